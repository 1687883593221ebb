-- The last transform settings each source's chain step accepted. A settings file (a mapping) is
-- re-read at every run; a new version is used once the transform accepts it, and a broken one
-- is refused while the version accepted here keeps serving.
CREATE TABLE transform_settings (
    source      TEXT NOT NULL,
    step        INTEGER NOT NULL,    -- position in the source's chain, from 0
    plugin      TEXT NOT NULL,
    file        TEXT,                -- the settings file it came from, if any
    settings    TEXT NOT NULL,       -- the settings as JSON, as the transform received them
    sha256      TEXT NOT NULL,
    accepted_at INTEGER NOT NULL,    -- unix ms
    PRIMARY KEY (source, step)
);
