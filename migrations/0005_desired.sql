-- The desired state: what the sources say, after transforms and merging, before any target is
-- consulted. The directory replaces it whole after each complete merge; the engine, and later
-- a Crowd-compatible server or SCIM, read it. Lineage: each person's IdP records; the nesting
-- path of a membership is rebuilt from the mirror on demand (`roster why`).
CREATE TABLE desired_persons (
    key          TEXT PRIMARY KEY,  -- lower-case username
    username     TEXT NOT NULL,     -- as the winning record spells it
    email        TEXT,
    display_name TEXT,
    active       INTEGER NOT NULL,
    records      TEXT NOT NULL      -- JSON [[source, external id], ...], highest priority first
) WITHOUT ROWID;

CREATE TABLE desired_groups (
    name    TEXT PRIMARY KEY,
    members TEXT NOT NULL           -- lower-case usernames, one per line, nested groups flattened
) WITHOUT ROWID;

CREATE TABLE desired_meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at INTEGER NOT NULL,
    warnings TEXT NOT NULL          -- JSON list
);
