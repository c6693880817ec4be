-- Sieve (RFC 5228) scripts per account, at most one active (RFC 5804 §1.1); what the vacation action answered
-- (RFC 5230 §4.2: once per sender per :days); which script versions' errors were already reported to the account.
CREATE TABLE IF NOT EXISTS sieve_scripts (
    account  TEXT NOT NULL,                -- accounts.address
    name     TEXT NOT NULL,                -- RFC 5804 §1.6 script name
    content  TEXT NOT NULL,
    active   INTEGER NOT NULL DEFAULT 0,
    updated  REAL NOT NULL,
    PRIMARY KEY (account, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS sieve_one_active ON sieve_scripts (account) WHERE active = 1;
CREATE TABLE IF NOT EXISTS sieve_vacation (
    account  TEXT NOT NULL,
    sender   TEXT NOT NULL,                -- lower-cased envelope sender answered
    handle   TEXT NOT NULL,                -- RFC 5230 §4.2 :handle, or a digest of the reply's arguments
    until    REAL NOT NULL,                -- no other reply before this time
    PRIMARY KEY (account, sender, handle)
);
CREATE TABLE IF NOT EXISTS sieve_error_reports (
    account  TEXT NOT NULL,
    version  TEXT NOT NULL,                -- digest of the script text that failed
    at       REAL NOT NULL,
    PRIMARY KEY (account, version)
);
