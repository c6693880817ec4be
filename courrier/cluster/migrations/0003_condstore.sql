-- CONDSTORE/QRESYNC (RFC 7162) for the cluster's mail store, as courrier/migrations/0060 for the local one:
-- one row per expunged (or moved-out) UID with the mod-sequence of its expunge, what VANISHED (EARLIER) answers from.
-- Every expunge since the folder was made here is recorded (vanishedfloor 0); a migrated folder starts above 0.
CREATE TABLE mail_vanished (
    folder  BIGINT NOT NULL REFERENCES mail_folders(id) ON DELETE CASCADE,
    uid     BIGINT NOT NULL,
    modseq  BIGINT NOT NULL,
    PRIMARY KEY (folder, uid)
);
CREATE INDEX mail_vanished_modseq ON mail_vanished (folder, modseq);
-- Expunges at or below this mod-sequence have no record (folders copied by `courrier migrate`): a client that last
-- synced before it is told every UID that is not there.
ALTER TABLE mail_folders ADD COLUMN vanishedfloor BIGINT NOT NULL DEFAULT 0;
