-- State that was per node and must hold for the whole cluster (docs/cluster.md "What is stored where"):
-- Sieve scripts and vacation memory, the failed-login limiter's counters, the MTA-STS policy cache.

-- Sieve (courrier/cluster/sieve_store.py), the columns of the local store's courrier/migrations/0062: a script put
-- over ManageSieve on one node filters what every node delivers.
CREATE TABLE sieve_scripts (
    account  TEXT NOT NULL,                -- accounts.address
    name     TEXT NOT NULL,                -- RFC 5804 §1.6 script name
    content  TEXT NOT NULL,
    active   BOOLEAN NOT NULL DEFAULT false,
    updated  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, name)
);
CREATE UNIQUE INDEX sieve_one_active ON sieve_scripts (account) WHERE active;
-- RFC 5230 §4.2: one reply per sender and :handle within :days, whichever node delivers.
CREATE TABLE sieve_vacation (
    account  TEXT NOT NULL,
    sender   TEXT NOT NULL,                -- lower-cased envelope sender answered
    handle   TEXT NOT NULL,
    until    DOUBLE PRECISION NOT NULL,    -- no other reply before this time
    PRIMARY KEY (account, sender, handle)
);
CREATE INDEX sieve_vacation_until ON sieve_vacation (until);
CREATE TABLE sieve_error_reports (
    account  TEXT NOT NULL,
    version  TEXT NOT NULL,                -- digest of the script text that failed
    at       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, version)
);
-- Moves with every change of sieve_scripts: each node drops its cache of active scripts when it moves (read at most
-- once a second, as the local store reads SQLite's data_version).
CREATE TABLE sieve_version (
    one      BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    version  BIGINT NOT NULL
);
INSERT INTO sieve_version VALUES (true, 1);
CREATE FUNCTION sieve_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sieve_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER sieve_changed AFTER INSERT OR UPDATE OR DELETE ON sieve_scripts
    FOR EACH STATEMENT EXECUTE FUNCTION sieve_changed();

-- The failed-login limiter (courrier/cluster/limits.py): one row per key and fixed window, bumped by an upsert.
-- key: 'c:' + client (IPv4 address or IPv6 prefix) or 'a:' + account. n counts failures and the checks in flight
-- (a slot is taken before the password is checked and given back when it was right), so concurrent attempts on
-- several nodes cannot pass the budget together. A node that dies mid-check leaves its slot, which ends with its
-- window.
CREATE TABLE auth_counts (
    key  TEXT NOT NULL,
    win  BIGINT NOT NULL,                  -- floor(epoch / window)
    n    INTEGER NOT NULL,
    PRIMARY KEY (key, win)
);
-- The clients that failed on an account in a window (an account is locked when enough different ones did).
CREATE TABLE auth_account_clients (
    account  TEXT NOT NULL,
    win      BIGINT NOT NULL,
    client   TEXT NOT NULL,
    PRIMARY KEY (account, win, client)
);
CREATE TABLE auth_locks (
    key    TEXT PRIMARY KEY,               -- as auth_counts.key
    until  DOUBLE PRECISION NOT NULL
);
-- A client that logged in to an account keeps having its password checked while the account is locked.
CREATE TABLE auth_known (
    account  TEXT NOT NULL,
    client   TEXT NOT NULL,
    until    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, client)
);

-- MTA-STS policies (RFC 8461 §5.1) fetched by any node, the columns of the local courrier/migrations/0045: a policy
-- one node saw protects what every node relays.
CREATE TABLE mta_sts_policy (
    domain   TEXT PRIMARY KEY,
    id       TEXT NOT NULL,
    policy   TEXT NOT NULL,
    fetched  DOUBLE PRECISION NOT NULL,
    expires  DOUBLE PRECISION NOT NULL
);
