"""The disk-writer process: durable Maildir writes answered per round; a dead child fails its jobs, the next restarts."""

import asyncio
import errno
import os
import time

import pytest

from courrier.mailbox import maildir
from courrier.mailbox.store import MaildirStore
from courrier.mailbox.writer import ProcessWriter


def slow_job(rnd, seconds: float) -> int:  # runs in the child (imported there by reference)
    time.sleep(seconds)
    return os.getpid()


def failing_job(rnd) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


async def test_copies_written_in_lf_by_the_child(tmp_path):
    w = ProcessWriter(2)
    try:
        boxes = [str(maildir.ensure(tmp_path / n)) for n in ("a", "b")]
        body = b"Subject: hi\r\n\r\nline 1\r\n.dot\r\n"
        results = await asyncio.gather(*(
            w.submit("courrier.mailbox.store:deliver_copies", [(b, b"X-Trace: %d\n" % i) for b in boxes], body)
            for i in range(20)))
    finally:
        w.close()
    for paths in results:
        assert [os.path.dirname(os.path.dirname(p)) for p in paths] == boxes
        for p in paths:
            assert p.endswith(f",S={os.path.getsize(p)}") and os.path.dirname(p).endswith("/new")
            data = open(p, "rb").read()
            assert b"\r" not in data and data.endswith(b"Subject: hi\n\nline 1\n.dot\n")
    assert len(os.listdir(tmp_path / "a" / "new")) == 20 and os.listdir(tmp_path / "a" / "tmp") == []


async def test_errors_keep_their_errno_and_a_dead_child_is_replaced(tmp_path):
    w = ProcessWriter(2)
    try:
        with pytest.raises(OSError) as e:
            await w.submit("tests.mailbox.test_writer:failing_job")
        assert e.value.errno == errno.ENOSPC  # the SMTP layer answers 452 4.3.1 on it
        pid = await w.submit("tests.mailbox.test_writer:slow_job", 0)
        pending = asyncio.ensure_future(w.submit("tests.mailbox.test_writer:slow_job", 30))
        await asyncio.sleep(0.3)
        os.kill(pid, 9)
        with pytest.raises(OSError):
            await asyncio.wait_for(pending, 10)
        assert await w.submit("tests.mailbox.test_writer:slow_job", 0) != pid  # a new child
    finally:
        w.close()


async def test_store_delivers_small_messages_through_the_process(tmp_path):
    store = MaildirStore(tmp_path)
    try:
        box = store.account_root("bob@example.test")
        body = b"Subject: x\r\n\r\nhello\r\n"
        paths = await store.deliver([(box, b"Return-Path: <a@b>\n")], lambda: iter([body]), size=len(body))
        assert paths[0].read_bytes() == b"Return-Path: <a@b>\nSubject: x\n\nhello\n"
        big = [b"y" * 1000 + b"\r\n"] * 1100  # over PROCESS_MAX: streamed by the threads
        paths = await store.deliver([(box, b"")], lambda: iter(big), size=1002 * 1100)
        assert paths[0].stat().st_size == 1001 * 1100
    finally:
        store.close()


def test_a_round_commits_its_files_together_and_answers_after(tmp_path):
    box = maildir.ensure(tmp_path / "box")
    gathered, answers = [], []

    def job(rnd, i):
        if i == 2:
            raise OSError(errno.EIO, "boom")
        path = maildir.write_new(box, [b"n: %d\n" % i], round=rnd)
        assert not path.exists()  # committed by the round, after every job ran
        rnd.gather(gathered.extend, i)
        return path

    maildir.run_round([(job, (i,), i) for i in range(4)], answers.extend)
    assert [(t, ok) for t, ok, _ in answers] == [(0, True), (1, True), (2, False), (3, True)]
    assert sorted(gathered) == [0, 1, 3]  # gathered work only for the jobs that succeeded
    for _, ok, res in answers:
        if ok:
            assert res.read_bytes().startswith(b"n: ") and res.parent == box / "new"
    assert os.listdir(box / "tmp") == [] and len(os.listdir(box / "new")) == 3
