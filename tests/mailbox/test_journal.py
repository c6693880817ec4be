"""The delivery journal (courrier/mailbox/journal.py): one fdatasync before the answer, Maildir files at once, and
after a crash every acknowledged message back in its Maildir exactly once — a torn journal tail ignored."""

import asyncio
import os
import struct
import time

import pytest

from courrier.mailbox import journal as J
from courrier.mailbox.maildir import ensure
from courrier.mailbox.store import MaildirStore


def messages(box):
    return sorted((box / sub / n).read_bytes() for sub in ("new", "cur") for n in os.listdir(box / sub))


def crash(j: J.Journal) -> None:
    """What kill -9 leaves: the file as written, no settling, no last checkpoint (the lock goes with the fd)."""
    os.close(j.fd)
    j.fd = -1


async def deliver_all(j, box, n, start=0):
    return await asyncio.gather(*(j.deliver([(box, b"X-N: %d\n" % i)], b"Subject: s\n\nbody %d\n" % i)
                                  for i in range(start, start + n)))


async def test_delivered_files_are_whole_in_new_and_share_fdatasyncs(tmp_path):
    box = ensure(tmp_path / "mail" / "box")
    j = J.Journal(tmp_path / J.FILE)
    j.open()
    try:
        paths = await deliver_all(j, box, 50)
        assert j.syncs < 50  # one loop iteration's messages share one fdatasync
        for i, (p,) in enumerate(paths):
            assert p.parent == box / "new" and p.read_bytes() == b"X-N: %d\nSubject: s\n\nbody %d\n" % (i, i)
            assert p.name.endswith(f",S={p.stat().st_size}")
        assert os.listdir(box / "tmp") == []
    finally:
        j.close()
    assert j.fd == -1 and len(messages(box)) == 50


async def test_kill_between_the_answer_and_the_maildir_comes_back_once_and_a_torn_tail_is_ignored(tmp_path):
    box = ensure(tmp_path / "mail" / "box")
    j = J.Journal(tmp_path / J.FILE)
    j.open()
    paths = [p for (p,) in await deliver_all(j, box, 5)]
    os.rename(paths[1], box / "cur" / (paths[1].name + ":2,S"))  # an IMAP client saw it and set \Seen
    paths[2].unlink()  # the power went before the file reached the disk
    paths[3].write_bytes(b"torn")  # … or before all of it did
    torn_at = j.offset
    crash(j)
    # an append that was never acknowledged: a valid header, then the power went in the middle of the payload
    head = J._record(j.epoch, j.seq + 1, J.MESSAGE, [J._message_meta([(str(box), "999.x,S=10", b"")]), b"0123456789"])
    rec = b"".join(head)
    with open(tmp_path / J.FILE, "r+b") as f:
        f.seek(torn_at)
        f.write(rec[:-4] + b"\0\0\0\0")
    j2 = J.Journal(tmp_path / J.FILE)
    restored = j2.open()
    try:
        assert sorted(p.name for p in restored) == sorted([paths[2].name, paths[3].name])
        assert messages(box) == sorted(b"X-N: %d\nSubject: s\n\nbody %d\n" % (i, i) for i in range(5))  # once each
        assert os.listdir(box / "tmp") == []
        assert not any(n.startswith("999.") for n in os.listdir(box / "new"))  # never acknowledged: not delivered
        await deliver_all(j2, box, 1, start=5)
    finally:
        j2.close()
    j3 = J.Journal(tmp_path / J.FILE)  # after a clean stop nothing is left to recover
    assert j3.open() == []
    j3.close()
    assert len(messages(box)) == 6


async def test_settled_messages_are_not_written_again(tmp_path, monkeypatch):
    box = ensure(tmp_path / "mail" / "box")
    monkeypatch.setattr(J, "SETTLE_INTERVAL", 0.01)
    j = J.Journal(tmp_path / J.FILE)
    j.open()
    paths = [p for (p,) in await deliver_all(j, box, 3)]
    for _ in range(200):
        if j._checkpointed >= j.seq - 1 and not j._open:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the checkpoint's own fdatasync
    paths[0].unlink()  # expunged by a reader after the checkpoint: stays expunged
    crash(j)
    j2 = J.Journal(tmp_path / J.FILE)
    assert j2.open() == []
    j2.close()
    assert len(messages(box)) == 2


async def test_a_full_journal_wraps_once_its_messages_are_settled(tmp_path):
    box = ensure(tmp_path / "mail" / "box")
    j = J.Journal(tmp_path / J.FILE, size=64 * 1024)
    j.open()
    for k in range(10):  # 300 records of ~2.1 KB through 64 KiB
        await asyncio.gather(*(j.deliver([(box, b"")], b"%05d\n" % (k * 30 + i) + b"x" * 2048) for i in range(30)))
    assert j.wraps >= 5
    crash(j)
    j2 = J.Journal(tmp_path / J.FILE)
    j2.open()
    j2.close()
    got = messages(box)
    assert len(got) == 300 and len({m[:5] for m in got}) == 300


def test_a_second_process_cannot_take_it(tmp_path):
    j = J.Journal(tmp_path / J.FILE)
    j.open()
    try:
        with pytest.raises(J.JournalBusy):
            J.Journal(tmp_path / J.FILE).open()
    finally:
        j.close()


def test_scan_stops_at_a_bad_checksum_or_a_gap_in_the_sequence():
    recs = [b"".join(J._record(7, s, J.CHECKPOINT, [struct.pack("<Q", 0)])) for s in (4, 5, 7, 8)]
    assert [s for s, _, _ in J.scan(b"".join(recs) + bytes(100))] == [4, 5]  # 7 does not follow 5
    bad = bytearray(b"".join(recs[:2]))
    bad[-1] ^= 1
    assert [s for s, _, _ in J.scan(bytes(bad))] == [4]
    other_epoch = b"".join(J._record(8, 6, J.CHECKPOINT, [struct.pack("<Q", 0)]))
    assert [s for s, _, _ in J.scan(b"".join(recs[:2]) + other_epoch)] == [4, 5]


async def test_the_store_delivers_through_the_journal_once_recovered(tmp_path):
    store = MaildirStore(tmp_path)
    try:
        assert store.recover() == 0 and store.journal is not None
        box = store.account_root("bob@example.test")
        body = b"Subject: x\r\n\r\nhello\r\n"
        (p,) = await store.deliver([(box, b"Return-Path: <a@b>\n")], lambda: iter([body]), size=len(body))
        assert p.read_bytes() == b"Return-Path: <a@b>\nSubject: x\n\nhello\n" and store.journal.syncs >= 1
    finally:
        store.close()
    assert (tmp_path / J.FILE).stat().st_size == J.SIZE


async def test_after_a_slow_sync_the_syncs_leave_the_loop_for_a_while(tmp_path):
    box = ensure(tmp_path / "mail" / "box")
    j = J.Journal(tmp_path / J.FILE)
    j.open()
    try:
        j._threaded_until = time.monotonic() + 60  # as after an fdatasync slower than SLOW_SYNC
        paths = await deliver_all(j, box, 40)
        assert j._thread is not None and all(p.read_bytes().endswith(b"body %d\n" % i) for i, (p,) in enumerate(paths))
        crash(j)
        j2 = J.Journal(tmp_path / J.FILE)
        assert j2.open() == [] and len(messages(box)) == 40
        j2.close()
    finally:
        j.close()
