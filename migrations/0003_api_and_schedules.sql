-- API tokens: only a hash of each token is kept; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,          -- admin, operator, viewer
    sha256       TEXT NOT NULL UNIQUE,   -- of the whole token
    created_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Where a source was defined: in roster.toml (read-only through the API) or through the API.
ALTER TABLE sources ADD COLUMN origin TEXT NOT NULL DEFAULT 'file';

-- What the scheduler remembers across restarts, per source: a run missed while Roster was
-- down runs once at start.
CREATE TABLE schedule_state (
    source          TEXT PRIMARY KEY,
    first_seen_at   INTEGER NOT NULL,   -- unix ms the scheduler first saw the source (staleness counts from it)
    last_fire_at    INTEGER,            -- unix ms of the fire time last run
    last_success_at INTEGER             -- unix ms of the last run of this source that succeeded
);
