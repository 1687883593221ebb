-- What each applied run took away from its target, so the guard can sum a rolling window:
-- many runs each under the threshold must not add up, unseen, to a mass removal. A run that
-- applied an approved plan is `reviewed`: an administrator saw everything before it, so the
-- window starts afresh after it.
CREATE TABLE destroyed (
    run_id              INTEGER PRIMARY KEY,
    target              TEXT NOT NULL,
    applied_at          INTEGER NOT NULL,   -- unix ms
    reviewed            INTEGER NOT NULL,   -- 1: an approved plan
    deprovisions        INTEGER NOT NULL,
    memberships_removed INTEGER NOT NULL,
    renames             INTEGER NOT NULL,
    email_changes       INTEGER NOT NULL
);
CREATE INDEX destroyed_by_target ON destroyed (target, applied_at);
