-- Sessions of the admin pages (issue 18): a person logs in with an API token and gets a session
-- cookie; the session acts with that token's name and role for as long as the token is live.
-- Only the sha256 of the session id is kept, so a copy of the database opens no session. The
-- CSRF token is the synchroniser token every change made through the pages must carry.
CREATE TABLE ui_sessions (
    id_sha256    TEXT PRIMARY KEY,
    token_id     INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,   -- unix ms
    last_seen_at INTEGER NOT NULL    -- unix ms; idle sessions expire
);
CREATE INDEX ui_sessions_token ON ui_sessions (token_id);
