"""The capture journal (capture/journal.py): one fdatasync per round makes a round of arrivals durable, a checkpoint
drops it once the Maildir files are synced, and recovery puts back what a crash lost — never a deleted message."""

import asyncio
import io
import os
import time

from courrier.capture import journal
from courrier.capture.store import CaptureStore
from courrier.config import CaptureConfig
from courrier.mail.envelope import Envelope, Hop, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import parse_address
from courrier.mailbox.durable import ensure


def test_records_round_trip_and_stop_at_a_torn_tail():
    a = journal.record(journal.MESSAGE, "ID1", "new/one,S=3", b"abc")
    b = journal.record(journal.DELETED, "ID0")
    c = journal.record(journal.MESSAGE, "ID2", "new/two,S=3", b"xyz")
    assert list(journal.records(a + b + c)) == [(b"M", "ID1", "new/one,S=3", b"abc"), (b"D", "ID0", "", b""),
                                                 (b"M", "ID2", "new/two,S=3", b"xyz")]
    assert [r[1] for r in journal.records(a + b + c[:-1])] == ["ID1", "ID0"]  # cut short: never acknowledged
    damaged = bytearray(a + c)
    damaged[len(a) + 30] ^= 1  # a flipped bit in the second record's content: CRC mismatch, stop there
    assert [r[1] for r in journal.records(bytes(damaged))] == ["ID1"]


def _segment(capture_dir, *recs) -> None:
    d = journal.journal_dir(capture_dir)
    d.mkdir(exist_ok=True)
    (d / "1-1-1.seg").write_bytes(b"".join(recs))


def test_recover_rewrites_missing_and_torn_files_keeps_moved_ones_and_skips_deleted(tmp_path):
    cap = ensure(tmp_path / "capture")
    (cap / "new" / "lost,S=5").unlink(missing_ok=True)
    (cap / "new" / "torn,S=5").write_bytes(b"he")  # a power cut left half of it
    (cap / "cur" / "moved,S=5:2,S").write_bytes(b"moved")  # IMAP marked it seen (new/ → cur/ with a flag)
    _segment(cap,
             journal.record(journal.MESSAGE, "A", "new/lost,S=5", b"lost!"),
             journal.record(journal.MESSAGE, "B", "new/torn,S=5", b"hello"),
             journal.record(journal.MESSAGE, "C", "new/moved,S=5", b"moved"),
             journal.record(journal.MESSAGE, "D", "new/gone,S=5", b"gone!"),  # pruned in the writer process
             journal.record(journal.DELETED, "D"),
             journal.record(journal.MESSAGE, "E", "new/api,S=5", b"api!!"))  # deleted through the API
    journal.note_deleted(cap, ["E"])
    assert journal.recover(cap) == 2
    assert (cap / "new" / "lost,S=5").read_bytes() == b"lost!"
    assert (cap / "new" / "torn,S=5").read_bytes() == b"hello"
    assert sorted(os.listdir(cap / "cur")) == ["moved,S=5:2,S"]  # not copied back to new/
    assert sorted(os.listdir(cap / "new")) == ["lost,S=5", "torn,S=5"]
    assert os.listdir(cap / "tmp") == []
    assert os.listdir(journal.journal_dir(cap)) == []  # segments and deletion notes dropped once synced
    assert journal.recover(cap) == 0  # nothing left: a second start does nothing


def _arrive(store: CaptureStore, n: int) -> list[str]:
    async def go() -> list[str]:
        ids = []
        for i in range(n):
            env = Envelope(mail_from=parse_address("a@x.test"), rcpts=[Recipient(parse_address("b@y.test"))])
            body = f"Subject: j{i}\r\nMessage-ID: <j{i}@x.test>\r\n\r\nhello {i}\r\n".encode()
            ids.append(await store.add(env, Hop(by="mx.test", listener="smtp", client_ip="127.0.0.1"),
                                       ReceivedMessage(io.BytesIO(body), len(body))))
        return ids

    return asyncio.run(go())


def test_arrivals_go_through_the_journal_then_a_checkpoint_drops_it(tmp_path):
    store = CaptureStore(tmp_path, CaptureConfig(), db_path=tmp_path / "courrier.db", hostname="mx.test")
    try:
        ids = _arrive(store, 3)
        jdir = journal.journal_dir(store.maildir)
        segs = list(jdir.glob("*.seg"))
        assert len(segs) == 1  # written by the disk-writer process before each 250
        assert [r[1] for r in journal.records(segs[0].read_bytes())] == ids
        assert [m.id for m in store.list().messages] == ids[::-1]  # indexed before the 250 too
        deadline = time.monotonic() + journal.CHECKPOINT_AGE + 10
        while list(jdir.glob("*.seg")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(jdir.glob("*.seg")) == []  # the Maildir files are synced: the segment is dropped
    finally:
        store.close()


def test_a_lost_file_comes_back_at_start_with_its_id(tmp_path):
    store = CaptureStore(tmp_path, CaptureConfig(), db_path=tmp_path / "courrier.db", hostname="mx.test")
    try:
        ids = _arrive(store, 2)
        store.delete([ids[1]])  # deleted after its 250: must stay deleted
        seg = next(journal.journal_dir(store.maildir).glob("*.seg"))
        kept = seg.read_bytes()
    finally:
        store.close()
    assert not seg.exists()  # a graceful stop syncs the files and drops the journal
    # as after a crash before the checkpoint: the segment is back, the first file lost, its row too
    seg.write_bytes(kept)
    journal.note_deleted(store.maildir, [ids[1]])
    for sub in ("new", "cur"):
        for name in os.listdir(store.maildir / sub):
            os.unlink(store.maildir / sub / name)
    store2 = CaptureStore(tmp_path, CaptureConfig(), db_path=tmp_path / "courrier.db", hostname="mx.test")
    try:
        store2.index.clear()

        async def start() -> tuple[list[str], bytes | None]:
            await store2.start()
            try:
                return [m.id for m in store2.list().messages], store2.raw(ids[0])
            finally:
                await store2.aclose()

        listed, raw = asyncio.run(start())
        assert listed == [ids[0]]
        assert raw is not None and b"hello 0" in raw
    finally:
        store2.close()
