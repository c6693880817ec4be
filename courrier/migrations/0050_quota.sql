-- Quotas (issue 15 item 5): each account's own storage quota, and the usage kept by the mailbox index.
-- accounts.quota: octets; NULL = [accounts] default_quota applies, 0 = no limit for this account.
ALTER TABLE accounts ADD COLUMN quota INTEGER;
-- Each folder's message count and octets (RFC822.SIZE, CRLF), kept with its rows by courrier/mailbox/index.py on
-- every write and expunge: an account's usage is a sum over its few folder rows, never a directory walk.
ALTER TABLE mbox_folders ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mbox_folders ADD COLUMN octets INTEGER NOT NULL DEFAULT 0;
UPDATE mbox_folders SET
    messages = (SELECT COUNT(*) FROM mbox_messages WHERE folder = mbox_folders.id),
    octets = (SELECT COALESCE(SUM(size), 0) FROM mbox_messages WHERE folder = mbox_folders.id);
-- Mail delivered into a folder and not yet taken in by the index (delivery writes Maildir files without it): a row
-- per message written at delivery unless the index has it already, deleted when the index takes the file in.
CREATE TABLE IF NOT EXISTS mbox_arrivals (
    path     TEXT NOT NULL,                -- the folder, as mbox_folders.path
    base     TEXT NOT NULL,                -- the Maildir base name, as mbox_messages.base
    octets   INTEGER NOT NULL,
    at       REAL NOT NULL,                -- when counted: a row whose file vanished unindexed is dropped later
    PRIMARY KEY (path, base)
);
