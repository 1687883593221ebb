-- The Bitbucket target when it is created through the API instead of roster.toml's [target].
-- The whole configuration is sealed, since it holds the password or token; at most one row.
CREATE TABLE api_target (
    id         TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,      -- XChaCha20-Poly1305 over the target's JSON, credentials included
    updated_at INTEGER NOT NULL
);
