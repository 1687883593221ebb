-- Bitbucket Cloud as a target (issue 20): which Atlassian account each Roster name is, and the
-- calls made to a target that meters them over a rolling window.
--
-- Atlassian accounts are keyed by account id, never by a name Roster chooses: the account of a
-- desired person is found by email, and remembered here (an invitation is remembered from the
-- moment it is sent, before any account exists).
CREATE TABLE target_accounts (
    target_id   TEXT NOT NULL,
    name        TEXT NOT NULL,              -- Roster's lower-case name
    email       TEXT,
    account_id  TEXT,                       -- the target's id, once an account was found
    invited_at  INTEGER,                    -- ms since the epoch, when Roster invited the address
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (target_id, name)
);
CREATE INDEX target_accounts_by_account ON target_accounts (target_id, account_id);

-- Every call sent to a metered target, so the budget spans runs and processes.
CREATE TABLE target_calls (
    target_id   TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
);
CREATE INDEX target_calls_by_time ON target_calls (target_id, at_ms);

-- What the target itself said of its meter (a 429's X-RateLimit-Limit and Retry-After).
CREATE TABLE target_call_limits (
    target_id       TEXT PRIMARY KEY,
    calls           INTEGER,                -- the limit it announced, when lower than configured
    spent_until_ms  INTEGER                 -- no call before this
);
