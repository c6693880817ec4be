-- Mailbox index (courrier/mailbox/index.py): UIDs, UIDVALIDITY, modification sequences and flags of every Maildir
-- message served over POP3/IMAP. Rebuilt from the Maildir when files appear or vanish behind its back.
-- It lives in courrier.db (WAL mode: readers never block the single writer, and writes are short transactions).
CREATE TABLE IF NOT EXISTS mbox_folders (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,     -- Maildir path, relative to data_dir when inside it
    uidvalidity   INTEGER NOT NULL,         -- RFC 3501 §2.3.1.1
    uidnext       INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL          -- RFC 7162 style: bumped on every change, tells other processes to reload
);
CREATE TABLE IF NOT EXISTS mbox_messages (
    folder       INTEGER NOT NULL REFERENCES mbox_folders(id) ON DELETE CASCADE,
    uid          INTEGER NOT NULL,
    base         TEXT NOT NULL,             -- Maildir base name (the file name before ":2,")
    file         TEXT NOT NULL,             -- "new/<name>" or "cur/<name>:2,<flags>"
    flags        TEXT NOT NULL,             -- IMAP flags and keywords, space separated
    size         INTEGER NOT NULL,          -- RFC822.SIZE: octets once served with CRLF line endings
    internaldate REAL NOT NULL,             -- RFC 3501 §2.3.3, the file's mtime
    modseq       INTEGER NOT NULL,
    PRIMARY KEY (folder, uid)
);
CREATE UNIQUE INDEX IF NOT EXISTS mbox_messages_base ON mbox_messages(folder, base);
CREATE TABLE IF NOT EXISTS mbox_subscriptions (
    root TEXT NOT NULL,                     -- the account's Maildir root
    name TEXT NOT NULL,                     -- IMAP mailbox name (RFC 3501 §6.3.6)
    PRIMARY KEY (root, name)
);
