-- RFC 8474 §4 MAILBOXID of a folder copied by `courrier migrate` from a local store (its Maildir's courrier-mailboxid),
-- so clients that know the folder by it see the same one; NULL for folders made here, whose MAILBOXID comes from the
-- row's id and UIDVALIDITY (courrier/cluster/mailstore.py:mailbox_id). RENAME changes neither.
ALTER TABLE mail_folders ADD COLUMN mailboxid TEXT;
