-- CONDSTORE/QRESYNC (RFC 7162) and \Recent across restarts (issue 16), for the mailbox index (courrier/mailbox/index.py).
-- mbox_vanished: one row per expunged UID with the mod-sequence of its expunge (RFC 7162 §3.2.5.2, §3.2.6: what
--                VANISHED (EARLIER) answers from). Also kept in the Maildir's courrier-uidlist (mailbox/uidlist.py).
-- vanishedfloor: expunges at or below this mod-sequence were not recorded (folders older than this migration, or an
--                index rebuilt without a uidlist): a client that last synced before it is told every UID that is not
--                there (RFC 7162 §3.2.5.2 lets VANISHED (EARLIER) name UIDs that no longer matter).
-- recentfloor:   RFC 3501 §2.3.2 \Recent: UIDs from here on have not been seen by any session yet.
CREATE TABLE IF NOT EXISTS mbox_vanished (
    folder INTEGER NOT NULL REFERENCES mbox_folders(id) ON DELETE CASCADE,
    uid    INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (folder, uid)
);
CREATE INDEX IF NOT EXISTS mbox_vanished_modseq ON mbox_vanished(folder, modseq);
ALTER TABLE mbox_folders ADD COLUMN vanishedfloor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mbox_folders ADD COLUMN recentfloor INTEGER NOT NULL DEFAULT 0;
UPDATE mbox_folders SET vanishedfloor = highestmodseq, recentfloor = uidnext;
