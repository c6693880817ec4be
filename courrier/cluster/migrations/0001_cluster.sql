-- The cluster's shared state (docs/cluster.md): mailboxes and messages, the outbound queue, the nodes.
-- Applied once by the first node that starts (courrier/cluster/pg.py, under an advisory lock).

-- UIDVALIDITY values (RFC 3501 §2.3.1.1): one sequence for every folder ever made, so a folder deleted and made
-- again never gets a value it had before. Starts at the clock, as the local store's values do.
CREATE SEQUENCE IF NOT EXISTS mail_uidvalidity;
SELECT setval('mail_uidvalidity', GREATEST(extract(epoch FROM now())::bigint, 1));

-- One row per account that has mail state here (provisioned: default folders made and subscribed once).
CREATE TABLE mail_accounts (
    account      TEXT PRIMARY KEY,                 -- lower-case local@domain
    provisioned  BOOLEAN NOT NULL DEFAULT false
);

-- A folder (IMAP mailbox). uidnext and highestmodseq are bumped under the row's lock by every write, so UIDs are
-- handed out in commit order: no session ever sees UID n+1 before n (RFC 3501 §2.3.1.1 strictly ascending).
CREATE TABLE mail_folders (
    id             BIGSERIAL PRIMARY KEY,
    account        TEXT NOT NULL,
    name           TEXT NOT NULL,                  -- IMAP name, modified UTF-7, "INBOX" for the inbox
    uidvalidity    BIGINT NOT NULL DEFAULT nextval('mail_uidvalidity'),
    uidnext        BIGINT NOT NULL DEFAULT 1,
    highestmodseq  BIGINT NOT NULL DEFAULT 1,
    messages       BIGINT NOT NULL DEFAULT 0,      -- quota usage (RFC 9208), kept with every write
    octets         BIGINT NOT NULL DEFAULT 0,      -- sum of RFC822.SIZE (CRLF)
    UNIQUE (account, name)
);

CREATE TABLE mail_messages (
    folder        BIGINT NOT NULL REFERENCES mail_folders(id) ON DELETE CASCADE,
    uid           BIGINT NOT NULL,
    base          TEXT NOT NULL,                   -- unique for the message's life (POP3 UIDL)
    flags         TEXT[] NOT NULL DEFAULT '{}',
    size          BIGINT NOT NULL,                 -- RFC822.SIZE (CRLF)
    internaldate  DOUBLE PRECISION NOT NULL,
    modseq        BIGINT NOT NULL,
    hdr_len       INTEGER NOT NULL,                -- octets of the header section (with its blank line) in prefix+body
    prefix        BYTEA NOT NULL,                  -- this copy's own header lines (Return-Path, Delivered-To…), LF
    body_id       BIGINT NOT NULL,                 -- mail_bodies: the rest, shared by the copies of one delivery
    PRIMARY KEY (folder, uid)
);
CREATE INDEX mail_messages_base ON mail_messages (folder, base);
CREATE INDEX mail_messages_body ON mail_messages (body_id);

-- Message bodies in chunks of at most 1 MiB (LF line endings), written as they stream in from the SMTP spool, never
-- whole in memory; one body for every copy of a delivery and for IMAP COPY (the bytes are not copied). A body no
-- message refers to any more is deleted with the last message's expunge.
CREATE SEQUENCE mail_body_id;
CREATE TABLE mail_bodies (
    id    BIGINT NOT NULL,
    seq   INTEGER NOT NULL,
    data  BYTEA NOT NULL,
    PRIMARY KEY (id, seq)
);

CREATE TABLE mail_subscriptions (
    account  TEXT NOT NULL,
    name     TEXT NOT NULL,
    PRIMARY KEY (account, name)
);

-- The outbound queue: the message itself (envelope JSON + bytes) with its schedule, so any node can deliver it.
-- lease_owner/lease_until: the node delivering it now; a lease that lapses (its node died) is taken over.
CREATE TABLE queue (
    qid             TEXT PRIMARY KEY,
    sender          TEXT NOT NULL,
    created         DOUBLE PRECISION NOT NULL,
    size            BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt    DOUBLE PRECISION NOT NULL,
    last_error      TEXT,
    delay_notified  BOOLEAN NOT NULL DEFAULT false,
    lease_owner     TEXT,
    lease_until     DOUBLE PRECISION,
    envelope        BYTEA,                         -- queue/spool.py envelope_json (NULL: registered, not spooled)
    message         BYTEA                          -- CRLF, as spooled
);
CREATE INDEX queue_due ON queue (next_attempt);
CREATE INDEX queue_lease ON queue (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE queue_rcpt (
    qid       TEXT NOT NULL REFERENCES queue(qid) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,
    address   TEXT NOT NULL,
    status    TEXT NOT NULL DEFAULT 'pending',    -- pending, sent, failed
    code      INTEGER,
    enhanced  TEXT,
    text      TEXT,
    PRIMARY KEY (qid, idx)
);

CREATE TABLE delivery_log (
    id          BIGSERIAL PRIMARY KEY,
    qid         TEXT NOT NULL,
    time        DOUBLE PRECISION NOT NULL,
    node        TEXT NOT NULL,
    recipients  TEXT NOT NULL,
    host        TEXT,
    address     TEXT,
    result      TEXT NOT NULL,
    code        INTEGER,
    enhanced    TEXT,
    text        TEXT,
    tls         TEXT,
    tls_policy  TEXT
);
CREATE INDEX delivery_log_qid ON delivery_log (qid, id);

-- The nodes that ever started (liveness is the advisory lock each holds, not this table).
CREATE TABLE nodes (
    name     TEXT PRIMARY KEY,
    started  DOUBLE PRECISION NOT NULL,
    seen     DOUBLE PRECISION NOT NULL
);
