-- SCIM push (issue 17): what an identity provider pushed to a source, as SCIM resources, and
-- the tokens it pushes with. Group members are not here: they are the source's
-- `mirror_memberships` rows, the one record of who is in which group.

CREATE TABLE scim_resources (
    source       TEXT NOT NULL,
    kind         TEXT NOT NULL,          -- 'User' or 'Group'
    id           TEXT NOT NULL,          -- assigned by Roster, the mirror's ext_id
    external_id  TEXT,
    name_key     TEXT NOT NULL,          -- lower-cased userName (User) or displayName (Group): unique
    body         TEXT NOT NULL,          -- the resource as JSON, without members and meta
    version      INTEGER NOT NULL,       -- meta.version W/"n", bumped by each write
    created_at   INTEGER NOT NULL,
    modified_at  INTEGER NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;

CREATE UNIQUE INDEX scim_resources_name ON scim_resources (source, kind, name_key);
CREATE INDEX scim_resources_external ON scim_resources (source, kind, external_id);

CREATE TABLE scim_tokens (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    name          TEXT NOT NULL,
    sha256        TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);

CREATE INDEX scim_tokens_source ON scim_tokens (source);

-- The `display` an identity provider sent with a member (RFC 7643 makes it readWrite, and it
-- is given back as sent); NULL for memberships a fetch wrote.
ALTER TABLE mirror_memberships ADD COLUMN display TEXT;
