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
-- Mail delivered into a folder and not yet seen by the index (delivery writes Maildir files without it): counted
-- here at delivery, dropped when the index next lists the folder and takes the files in.
CREATE TABLE IF NOT EXISTS mbox_arrivals (
    path     TEXT PRIMARY KEY,             -- the folder, as mbox_folders.path
    messages INTEGER NOT NULL,
    octets   INTEGER NOT NULL
);
