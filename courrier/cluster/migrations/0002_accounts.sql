-- Accounts and aliases shared by every node (the columns of the local store's courrier/migrations 0001 + 0050), so
-- `courrier user …` on any node, or against the database, holds for the whole cluster.
CREATE TABLE accounts (
    address      TEXT PRIMARY KEY,                 -- lower-case local@domain
    password     TEXT NOT NULL,                    -- argon2id PHC string
    is_admin     INTEGER NOT NULL DEFAULT 0,
    send_as_any  INTEGER NOT NULL DEFAULT 0,
    created      DOUBLE PRECISION NOT NULL,
    quota        BIGINT                            -- octets; NULL: [accounts] default_quota; 0: no limit
);
CREATE TABLE aliases (
    alias    TEXT PRIMARY KEY,
    address  TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE
);

-- Moves with every change of either table: the nodes' lookup caches (courrier/accounts.py) are dropped when it
-- moves, as the local store's are when SQLite's data_version does.
CREATE TABLE accounts_version (
    one      BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    version  BIGINT NOT NULL
);
INSERT INTO accounts_version VALUES (true, 1);
CREATE FUNCTION accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_changed AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_changed();
CREATE TRIGGER aliases_changed AFTER INSERT OR UPDATE OR DELETE ON aliases
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_changed();
