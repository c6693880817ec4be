-- Capture mode on PostgreSQL (courrier/cluster/capture_store.py): the captured messages, their summary rows, tags,
-- read state and the full-text index, shared by every node of a cluster. The columns mirror the local store's
-- SQLite index (courrier/migrations/0030_capture.sql, 0063) so that one search grammar compiles to both.
CREATE TABLE IF NOT EXISTS capture_messages (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,               -- Mailpit-style random ID
    created       DOUBLE PRECISION NOT NULL,          -- reception time (unix seconds)
    date          DOUBLE PRECISION,                   -- the Date: field, when it parses
    message_id    TEXT NOT NULL DEFAULT '',           -- Message-ID without <>
    return_path   TEXT NOT NULL DEFAULT '',           -- envelope sender
    from_json     TEXT NOT NULL DEFAULT '{}',         -- the same compact JSON text as SQLite's (from:, to: … match it)
    to_json       TEXT NOT NULL DEFAULT '[]',
    cc_json       TEXT NOT NULL DEFAULT '[]',
    bcc_json      TEXT NOT NULL DEFAULT '[]',
    reply_to_json TEXT NOT NULL DEFAULT '[]',
    subject       TEXT NOT NULL DEFAULT '',
    size          BIGINT NOT NULL DEFAULT 0,          -- octets as sent (CRLF)
    attachments   INTEGER NOT NULL DEFAULT 0,
    inline        INTEGER NOT NULL DEFAULT 0,
    read          BOOLEAN NOT NULL DEFAULT false,
    username      TEXT NOT NULL DEFAULT '',           -- SMTP AUTH identity
    snippet       TEXT NOT NULL DEFAULT '',
    envelope      JSONB NOT NULL DEFAULT '{}',        -- client, helo, tls, listener, qid, rcpts, parse error
    headers       JSONB NOT NULL DEFAULT '[]',        -- [[lower-cased name, decoded value]…]: header: searches
    auth          TEXT,                               -- SPF/DKIM/DMARC outcome as search terms (web/verdicts.py)
    trace         BYTEA NOT NULL DEFAULT '',          -- Return-Path, X-Courrier-Envelope, Received (LF)
    search_text   TEXT NOT NULL DEFAULT '',           -- subject, addresses, decoded text: substring matches
    search_tsv    TSVECTOR NOT NULL DEFAULT ''        -- the same, case- and accent-folded words: word matches
);
CREATE INDEX IF NOT EXISTS capture_messages_created ON capture_messages (created, seq);
CREATE INDEX IF NOT EXISTS capture_messages_message_id ON capture_messages (message_id);
CREATE INDEX IF NOT EXISTS capture_messages_unread ON capture_messages (seq) WHERE NOT read;
CREATE INDEX IF NOT EXISTS capture_messages_search ON capture_messages USING GIN (search_tsv);
-- The message as the client sent it (LF line ends, Message-ID added when it had none): one bytea per message, a row
-- of its own so that list and search scans never touch it (TOAST keeps it compressed, out of line).
CREATE TABLE IF NOT EXISTS capture_bodies (
    seq   BIGINT PRIMARY KEY REFERENCES capture_messages (seq) ON DELETE CASCADE,
    data  BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS capture_tags (
    seq  BIGINT NOT NULL REFERENCES capture_messages (seq) ON DELETE CASCADE,
    tag  TEXT NOT NULL,
    PRIMARY KEY (seq, tag)
);
CREATE INDEX IF NOT EXISTS capture_tags_tag ON capture_tags (tag);
-- Free text is also a substring match (Mailpit's rule: "port" finds "report"): search_text ILIKE '%…%'. A trigram
-- index serves it where the pg_trgm extension (PostgreSQL's contrib, "trusted": a database owner may create it) can
-- be created; without it the substring half reads every row, as the local store's LIKE does, and answers the same.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX IF NOT EXISTS capture_messages_substring ON capture_messages USING GIN (search_text gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm not available (%): capture substring search reads every row', SQLERRM;
END
$$;
