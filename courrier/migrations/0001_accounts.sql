-- Accounts and their aliases.
CREATE TABLE IF NOT EXISTS accounts (
    address      TEXT PRIMARY KEY,           -- lower-case local@domain
    password     TEXT NOT NULL,              -- argon2id PHC string
    is_admin     INTEGER NOT NULL DEFAULT 0,
    send_as_any  INTEGER NOT NULL DEFAULT 0, -- may use any envelope sender / header From (trusted relays)
    created      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
    alias    TEXT PRIMARY KEY,               -- lower-case local@domain
    address  TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE
);
