"""The queue's reconciliation of spool and database (what a restart or a sendmail drop finds), with the real
spool and SQLite: complete files are adopted, incomplete ones quarantined and never delivered, stale rows dropped."""

from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import parse_address
from courrier.queue.runner import Queue
from courrier.queue.schedule import Schedule
from courrier.queue.spool import Spool, encode
from courrier.queue.store import SQLiteQueueStore


def env(qid):
    return Envelope(queue_id=qid, mail_from=parse_address("a@a.test"), rcpts=[Recipient(parse_address("b@b.test"))],
                    received_at=1.0)


def make(tmp_path, signer=None):
    spool, store = Spool(tmp_path / "queue"), SQLiteQueueStore(tmp_path / "c.db")
    q = Queue(spool=spool, store=store, transport=None, schedule=Schedule(), hostname="h",  # type: ignore[arg-type]
              signer=signer)
    return q, spool, store


def test_reconcile_after_crash_and_sendmail_drops(tmp_path):
    q, spool, store = make(tmp_path)
    spool.write(env("DROP1"), [b"Subject: a\r\n\r\nx\r\n"], incoming=True)  # sendmail while the server is down
    spool.write(env("CRASH1"), [b"Subject: b\r\n\r\nx\r\n"])  # spooled, crashed before its row was written
    torn = b"".join(encode(env("TORN1"), [b"Subject: c\r\n\r\nx\r\n"]))[:-3]  # no END record: never acknowledged
    (spool.incoming / "TORN1").write_bytes(torn)
    store.add("GONE1", "a@a.test", 1.0, 10, ["b@b.test"])  # row whose file was delivered and unlinked
    assert q._scan_sync(True) == 2
    assert store.qids() == {"DROP1", "CRASH1"}
    assert spool.queued_ids() == ["CRASH1", "DROP1"]
    assert [p.name for p in spool.corrupt.iterdir()] == ["TORN1"]
    assert not spool.incoming_files()
    assert q._scan_sync(True) == 0  # idempotent


def test_sendmail_drop_signed_on_adoption(tmp_path):
    q, spool, store = make(tmp_path, signer=lambda: (lambda m: b"DKIM-Signature: v=1; test\r\n"))
    spool.write(env("DROP2"), [b"Subject: a\r\n\r\nx\r\n"], incoming=True)
    q._scan_sync(False)
    _, msg = spool.read("DROP2")
    assert msg.startswith(b"DKIM-Signature: v=1; test\r\nSubject: a")
