-- The outbound queue's state and delivery log. The message itself lives in data_dir/queue/msg/<qid> (the spool);
-- these rows say what is left to do with it and what happened so far.
CREATE TABLE IF NOT EXISTS queue (
    qid            TEXT PRIMARY KEY,
    sender         TEXT NOT NULL,               -- "" for the null reverse-path
    created        REAL NOT NULL,
    size           INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt   REAL NOT NULL,
    last_error     TEXT,
    delay_notified INTEGER NOT NULL DEFAULT 0    -- a delay DSN was sent (RFC 3464 action=delayed), once
);
CREATE INDEX IF NOT EXISTS queue_next ON queue(next_attempt);
CREATE TABLE IF NOT EXISTS queue_rcpt (
    qid      TEXT NOT NULL REFERENCES queue(qid) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,                  -- position in the spool envelope
    address  TEXT NOT NULL,
    status   TEXT NOT NULL DEFAULT 'pending',   -- pending, sent, failed
    code     INTEGER,
    enhanced TEXT,
    text     TEXT,
    PRIMARY KEY (qid, idx)
);
-- One row per delivery attempt (per destination): kept after the message leaves the queue.
CREATE TABLE IF NOT EXISTS delivery_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    qid        TEXT NOT NULL,
    time       REAL NOT NULL,
    recipients TEXT NOT NULL,                   -- comma-separated
    host       TEXT,                            -- MX host name (or "local", "smarthost")
    address    TEXT,                            -- IP:port actually used
    result     TEXT NOT NULL,                   -- sent, deferred, failed
    code       INTEGER,
    enhanced   TEXT,
    text       TEXT,
    tls        TEXT                             -- TLS version used, if any
);
CREATE INDEX IF NOT EXISTS delivery_log_qid ON delivery_log(qid, id);
