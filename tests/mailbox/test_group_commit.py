"""Durable Maildir writes: atomic (tmp → new), and concurrent writers share directory fsyncs (group commit)."""

import os
import threading
from unittest import mock

from courrier.mailbox import maildir


def test_concurrent_writes_all_land_and_share_dir_fsyncs(tmp_path):
    md = maildir.ensure(tmp_path / "box")
    calls = []
    real = maildir.fsync_dir

    def slow_fsync_dir(p):
        calls.append(p)
        threading.Event().wait(0.01)  # a slow disk makes the sharing visible
        real(p)

    with mock.patch.object(maildir, "fsync_dir", slow_fsync_dir):
        threads = [threading.Thread(target=maildir.write_new, args=(md, [b"Subject: %d\n\nx\n" % i]))
                   for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    names = os.listdir(md / "new")
    assert len(names) == 64 and os.listdir(md / "tmp") == []
    assert all(",S=" in n for n in names)
    assert len(calls) < 64  # fewer directory fsyncs than messages


def test_failed_write_leaves_nothing(tmp_path):
    md = maildir.ensure(tmp_path / "box")

    def parts():
        yield b"partial"
        raise OSError(28, "No space left on device")

    try:
        maildir.write_new(md, parts())
    except OSError:
        pass
    assert os.listdir(md / "tmp") == [] and os.listdir(md / "new") == []


def test_crlf_to_lf_across_chunk_boundaries():
    chunks = [b"a\r", b"\nb\r\n", b"\r", b"\n", b"c\r"]
    assert b"".join(maildir.crlf_to_lf(chunks)) == b"a\nb\n\nc\r"
