-- Capture mode: the index of data_dir/capture/ (Maildir). Everything here can be rebuilt from the files
-- (CaptureStore.reindex): the message ID and envelope live in each file's X-Courrier-Envelope header.
CREATE TABLE IF NOT EXISTS capture_messages (
    seq          INTEGER PRIMARY KEY,        -- rowid, shared with capture_fts
    id           TEXT NOT NULL UNIQUE,       -- Mailpit-style random ID, stored in the file
    file         TEXT NOT NULL,              -- path relative to the Maildir: "new/<name>" or "cur/<name>:2,S"
    created      REAL NOT NULL,              -- reception time (unix seconds)
    date         REAL,                       -- the Date: header, when it parses
    message_id   TEXT NOT NULL DEFAULT '',   -- Message-ID without <>
    return_path  TEXT NOT NULL DEFAULT '',   -- envelope sender
    from_json    TEXT NOT NULL DEFAULT '{}', -- {"Name","Address"}
    to_json      TEXT NOT NULL DEFAULT '[]', -- [{"Name","Address"}…]
    cc_json      TEXT NOT NULL DEFAULT '[]',
    bcc_json     TEXT NOT NULL DEFAULT '[]', -- envelope recipients in no To/Cc header (as Mailpit)
    reply_to_json TEXT NOT NULL DEFAULT '[]',
    subject      TEXT NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT 0, -- octets of the message as sent (CRLF)
    attachments  INTEGER NOT NULL DEFAULT 0,
    inline       INTEGER NOT NULL DEFAULT 0,
    read         INTEGER NOT NULL DEFAULT 0,
    username     TEXT NOT NULL DEFAULT '',   -- SMTP AUTH identity
    snippet      TEXT NOT NULL DEFAULT '',
    envelope     TEXT NOT NULL DEFAULT '{}'  -- client, helo, tls, listener, qid, rcpts (JSON)
);
CREATE INDEX IF NOT EXISTS capture_messages_created ON capture_messages (created, seq);
CREATE TABLE IF NOT EXISTS capture_tags (
    seq  INTEGER NOT NULL REFERENCES capture_messages (seq) ON DELETE CASCADE,
    tag  TEXT NOT NULL,
    PRIMARY KEY (seq, tag)
);
CREATE INDEX IF NOT EXISTS capture_tags_tag ON capture_tags (tag);
-- Decoded text for search: words and word prefixes, case- and accent-insensitive (unicode61). The trigram tokenizer
-- would match any substring, as Mailpit's LIKE does, but costs ~4x more per message on insert and on prune.
CREATE VIRTUAL TABLE IF NOT EXISTS capture_fts USING fts5 (subject, addresses, body,
    tokenize = 'unicode61 remove_diacritics 2');
