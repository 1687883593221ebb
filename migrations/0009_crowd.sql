-- Roster as a Crowd-compatible user server (issue 21): the directory it serves to Bitbucket,
-- Jira, Confluence and Bamboo, the change log their incremental synchronisation reads, and the
-- applications allowed to read it.
--
-- The served directory is the state of the `crowd-directory` target: the engine plans, guards
-- and applies against it like any other target, so it holds the last approved desired state and
-- a held plan never reaches it. Memberships are flat (the desired state flattens nesting).

CREATE TABLE served_users (
    id            INTEGER PRIMARY KEY,
    lname         TEXT NOT NULL UNIQUE,      -- lower-cased name: Crowd names are case-insensitive
    name          TEXT NOT NULL,
    external_id   TEXT NOT NULL UNIQUE,      -- the stable <key>: survives renames
    display_name  TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    email         TEXT,
    active        INTEGER NOT NULL,
    records       TEXT NOT NULL,             -- JSON [[source, id], ...]: served as attributes
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE served_groups (
    id            INTEGER PRIMARY KEY,
    lname         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE served_members (
    group_id      INTEGER NOT NULL REFERENCES served_groups (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES served_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

CREATE INDEX served_members_user ON served_members (user_id, group_id);

-- One row per change a client must hear of, in order. The token a client holds is
-- "<epoch>.<seq>": the epoch (served_meta) changes when the log is reset, and a token older
-- than the oldest kept row is expired (410 EVENT_TOKEN_EXPIRED: the client syncs in full).
CREATE TABLE served_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,             -- 'user', 'group', 'user-membership'
    op            TEXT NOT NULL,             -- 'CREATED', 'UPDATED', 'DELETED'
    name          TEXT NOT NULL,             -- the user or group, as named when it happened
    body          TEXT                       -- JSON: the user or group then (CREATED, UPDATED);
                                             -- the parent groups (user-membership)
);

CREATE INDEX served_events_at ON served_events (at);

CREATE TABLE served_meta (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    epoch         TEXT NOT NULL
);

-- Applications that read the served directory, as Jira's "User server → Add application" has
-- them: a name, a password Roster generated and shows once (only its SHA-256 is kept), the
-- addresses it may call from (single addresses and CIDR ranges), and the groups it may see
-- (NULL: all).
CREATE TABLE crowd_apps (
    lname         TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    allowed       TEXT NOT NULL,             -- JSON list of addresses and CIDR ranges
    groups        TEXT,                      -- JSON list of group names, or NULL for every group
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    last_used_at  INTEGER
) WITHOUT ROWID;
