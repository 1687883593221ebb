-- Roster directory store, version 1.
-- Times are Unix milliseconds (UTC). JSON columns hold serde_json documents.

-- Sources: each configured identity-provider connection, in directory order (priority).
CREATE TABLE sources (
    id          TEXT PRIMARY KEY,
    plugin      TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    config      TEXT NOT NULL,           -- JSON: plugin settings, network policy, limits, transforms
    secrets     BLOB,                    -- XChaCha20-Poly1305 sealed JSON; never returned by any API
    updated_at  INTEGER NOT NULL
);

-- The mirror: what each source said when its last fetch completed.
CREATE TABLE mirror_users (
    source       TEXT NOT NULL,
    ext_id       TEXT NOT NULL,
    username     TEXT NOT NULL,
    email        TEXT,
    display_name TEXT,
    active       INTEGER NOT NULL,
    attributes   TEXT NOT NULL,          -- JSON [[name, value], …]
    removed      TEXT,                   -- NULL, 'soft-deleted' (restorable)
    PRIMARY KEY (source, ext_id)
) WITHOUT ROWID;

CREATE TABLE mirror_groups (
    source       TEXT NOT NULL,
    ext_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    attributes   TEXT NOT NULL,
    PRIMARY KEY (source, ext_id)
) WITHOUT ROWID;

CREATE TABLE mirror_memberships (
    source           TEXT NOT NULL,
    group_id         TEXT NOT NULL,
    member_id        TEXT NOT NULL,
    member_is_group  INTEGER NOT NULL,
    PRIMARY KEY (source, group_id, member_id, member_is_group)
) WITHOUT ROWID;

-- Staging: what a fetch in progress has read. Promoted into the mirror only when the fetch
-- completed; a failed fetch leaves the mirror untouched (rule 1).
CREATE TABLE staging_users (
    run_id       INTEGER NOT NULL,
    source       TEXT NOT NULL,
    ext_id       TEXT NOT NULL,
    username     TEXT NOT NULL,
    email        TEXT,
    display_name TEXT,
    active       INTEGER NOT NULL,
    attributes   TEXT NOT NULL,
    removed      TEXT,                   -- delta only: 'soft-deleted' or 'deleted'
    PRIMARY KEY (run_id, source, ext_id)
) WITHOUT ROWID;

CREATE TABLE staging_groups (
    run_id       INTEGER NOT NULL,
    source       TEXT NOT NULL,
    ext_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    attributes   TEXT NOT NULL,
    removed      TEXT,
    PRIMARY KEY (run_id, source, ext_id)
) WITHOUT ROWID;

CREATE TABLE staging_memberships (
    run_id           INTEGER NOT NULL,
    source           TEXT NOT NULL,
    group_id         TEXT NOT NULL,
    member_id        TEXT NOT NULL,
    member_is_group  INTEGER NOT NULL,
    removed          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, source, group_id, member_id, member_is_group)
) WITHOUT ROWID;

-- Incremental cursors.
CREATE TABLE cursors (
    source       TEXT PRIMARY KEY,
    delta_token  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Identity links: which Bitbucket account Roster manages for which IdP record. Written before
-- the Bitbucket call that creates or renames the account ('pending'), so a crash between the two
-- never leaves an account Roster made but does not recognise.
CREATE TABLE identities (
    target       TEXT NOT NULL,
    source       TEXT NOT NULL,
    ext_id       TEXT NOT NULL,
    username     TEXT NOT NULL,          -- the Bitbucket username (lower case)
    state        TEXT NOT NULL,          -- 'pending', 'active', 'disabled', 'deleted'
    first_seen   INTEGER NOT NULL,
    last_renamed INTEGER,
    PRIMARY KEY (target, source, ext_id)
) WITHOUT ROWID;
CREATE INDEX identities_by_username ON identities (target, username);

-- Groups Roster created or adopted in a target; memberships of other groups are left alone.
CREATE TABLE managed_groups (
    target       TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (target, name)
) WITHOUT ROWID;

-- Runs, plans, per-object results.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger      TEXT NOT NULL,          -- cli, api, schedule, scim, single-user
    mode         TEXT NOT NULL,          -- full, incremental, dry-run, apply-plan
    target       TEXT NOT NULL,
    sources      TEXT NOT NULL,          -- JSON list
    state        TEXT NOT NULL,          -- running, succeeded, partial, held, refused, failed
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    plan_id      TEXT,
    summary      TEXT,                   -- JSON: counts, stage times, API calls, warnings
    error        TEXT
);

CREATE TABLE plans (
    id           TEXT PRIMARY KEY,
    run_id       INTEGER NOT NULL,
    target       TEXT NOT NULL,
    hash         TEXT NOT NULL,          -- sha256 over the ordered operations
    state        TEXT NOT NULL,          -- draft, held, approved, applied, rejected, refused, superseded
    created_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    decided_by   TEXT,
    guard        TEXT                    -- JSON: why held or refused
);

CREATE TABLE plan_ops (
    plan_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    detail       TEXT NOT NULL,          -- JSON: before/after, members, lineage
    reason       TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
) WITHOUT ROWID;

CREATE TABLE results (
    run_id       INTEGER NOT NULL,
    plan_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    outcome      TEXT NOT NULL,          -- done, skipped, failed
    status       INTEGER,                -- HTTP status of the last attempt
    message      TEXT,
    attempts     INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Every administrative action: who, what, when, from where.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    origin       TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    detail       TEXT
);
