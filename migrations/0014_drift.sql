-- Drift (issue 22): what Roster last left in each group it manages, per target, so the next read
-- can tell a change made by hand in the target from one the sources asked for. A row with an
-- empty member says the group itself existed (a group Roster left empty still has its row).
CREATE TABLE drift_baseline (
    target TEXT NOT NULL,
    grp    TEXT NOT NULL,
    member TEXT NOT NULL,                 -- lower-case account name; '' for the group itself
    PRIMARY KEY (target, grp, member)
) WITHOUT ROWID;

-- Hand changes adopted under `drift = "adopt"`: Roster keeps them (withholds the operations that
-- would undo them) until the sources agree with them. member '' is the group itself.
CREATE TABLE drift_adopted (
    target     TEXT NOT NULL,
    grp        TEXT NOT NULL,
    member     TEXT NOT NULL,
    present    INTEGER NOT NULL,          -- 1: added by hand, 0: removed (or deleted) by hand
    adopted_at INTEGER NOT NULL,          -- unix ms
    PRIMARY KEY (target, grp, member)
) WITHOUT ROWID;
