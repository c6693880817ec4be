"""The capture journal: one fdatasync per round of arrivals instead of an fsync per Maildir file (issue 17).

Why. Capture keeps each message as a Maildir file (CONTRACT: ``data_dir/capture`` is a Maildir IMAP and POP3 serve).
Made durable one by one, every file costs a device flush of its own (file fsync, directory fsync): measured on the
benchmark VM, a round of 20 files took 0.3–1.3 ms *per file* of waiting, and the disk-writer process spent most of
its time there, so capture ran at a fraction of the protocol's speed. Appending the same 20 messages to one file and
fdatasync'ing it once took 0.02 ms per message.

How. In the disk-writer process (``writer_jobs.capture_job`` and its round, ``writer_jobs._index_round``), each message of a
round is written to its Maildir file without fsync (tmp → rename, so readers never see half a file), then the round
appends every message — its final file name, its ID and the whole file content — to the current *segment* of the
journal (``data_dir/capture-journal/<pid>-<n>.seg``) in one write, and fdatasyncs the segment once. Only then is the
round indexed and answered: the 250 still means "on stable storage", now through the journal.

A checkpoint makes the journal's messages durable in the Maildir itself and drops the segment: a thread of the
disk-writer process starts a new segment, calls ``syncfs`` on the Maildir's file system (one flush for every file
written before it), then removes the old segment. It runs once a segment is ``CHECKPOINT_AGE`` seconds old or
``MAX_SEGMENT`` bytes long, idle or not, so a segment outlives its messages' writes by about a second.

Recovery (``recover``, at every start of the store, before the scan): each record of every segment left behind (the
server or the writer was killed, or the power went) is checked against the Maildir: a file found by its base name
(IMAP may have moved it to ``cur/`` or changed its flags) with the same content is left alone; a missing or torn one
is written again, atomically, under its name. Then one ``syncfs`` and the segments are removed. A message deleted
after its 250 but before its segment was checkpointed must not come back: deletions append the IDs they remove to
``deleted`` (retention in the writer process writes them into its segment) and recovery skips those. Without an
fsync these notes survive a killed process, not a power cut — after which a deleted message may reappear, as an
unlinked Maildir file may without a directory fsync.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from courrier import log

MAGIC = b"CJ1"
MESSAGE, DELETED = b"M", b"D"
# magic, kind, id length, name length, content length, CRC-32 of id + name + content
_REC = struct.Struct("!3scHHII")
CHECKPOINT_AGE = 2.0  # seconds: a segment's messages are in the Maildir durably about this long after their 250
MAX_SEGMENT = 32 << 20  # bytes: checkpoint sooner under heavy load (recovery reads at most about this much)
DELETED_FILE = "deleted"


def journal_dir(capture_dir: Path) -> Path:
    """``data_dir/capture-journal``: beside the Maildir, not in it (a ``.name`` directory there is a folder)."""
    return capture_dir.parent / "capture-journal"


def record(kind: bytes, id_: str, name: str = "", content: bytes = b"") -> bytes:
    i, n = id_.encode(), name.encode()
    return _REC.pack(MAGIC, kind, len(i), len(n), len(content), zlib.crc32(content, zlib.crc32(n, zlib.crc32(i)))) \
        + i + n + content


def records(data: bytes) -> Iterator[tuple[bytes, str, str, bytes]]:
    """(kind, id, name, content) of each whole record; stops at the first torn or damaged one (an unanswered round
    cut short by a crash: nothing after it was ever acknowledged)."""
    pos, end = 0, len(data)
    while pos + _REC.size <= end:
        magic, kind, li, ln, lc, crc = _REC.unpack_from(data, pos)
        start = pos + _REC.size
        stop = start + li + ln + lc
        if magic != MAGIC or stop > end:
            return
        i, n, c = data[start:start + li], data[start + li:start + li + ln], data[start + li + ln:stop]
        if zlib.crc32(c, zlib.crc32(n, zlib.crc32(i))) != crc:
            return
        yield kind, i.decode(), n.decode(), c
        pos = stop


def _syncfs_fn():  # type: ignore[no-untyped-def]
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


_syncfs = _syncfs_fn()


def sync_filesystem(path: Path) -> None:
    """Every file written before the call, on the file system holding ``path``, on stable storage (``syncfs``;
    ``sync`` where it is missing)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def note_deleted(capture_dir: Path, ids: Iterable[str]) -> None:
    """Tells recovery not to bring these messages back (see the module's docstring). Only when a journal exists."""
    d = journal_dir(capture_dir)
    data = "".join(f"{i}\n" for i in ids).encode()
    if not data or not d.is_dir():
        return
    fd = os.open(d / DELETED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class Journal:
    """The disk-writer process's journal for one capture Maildir: ``append`` (durable on return), checkpoints."""

    def __init__(self, capture_dir: Path) -> None:
        self.capture_dir = capture_dir
        self.dir = journal_dir(capture_dir)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.fd = -1
        self.path: Path | None = None
        self.size = 0
        self.opened = 0.0
        self.n = 0
        self.thread = threading.Thread(target=self._checkpoints, name="courrier-capture-journal", daemon=True)
        self.thread.start()

    def append(self, data: bytes, sync: bool = True) -> None:
        """Appends records and fdatasyncs the segment: durable when it returns (raises OSError when not).
        ``sync=False`` (deletion notes): written only, made durable by the next append's fdatasync."""
        with self.lock:
            if self.fd < 0:
                self.n += 1
                self.path = self.dir / f"{os.getpid()}-{time.time_ns()}-{self.n}.seg"
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self.size, self.opened = 0, time.monotonic()
                _fsync_dir(self.dir)  # the segment's name must survive the crash its content is for
                self.wake.notify()
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            if sync:
                os.fdatasync(self.fd)
            self.size += len(data)
            if self.size >= MAX_SEGMENT:
                self.wake.notify()

    def _checkpoints(self) -> None:
        while True:
            with self.lock:
                while self.fd < 0:
                    self.wake.wait()
                wait = self.opened + CHECKPOINT_AGE - time.monotonic()
                if wait > 0 and self.size < MAX_SEGMENT:
                    self.wake.wait(wait)
                    continue
                fd, path = self.fd, self.path
                self.fd, self.path = -1, None  # the next round starts a new segment
            try:
                os.close(fd)
                sync_filesystem(self.capture_dir)  # every file of the old segment was written before this
                assert path is not None
                os.unlink(path)
            except Exception as e:  # noqa: BLE001 — the segment stays; the next start recovers from it
                log.event("capture.checkpoint_failed", level="error", error=repr(e))


def retire(capture_dir: Path) -> None:
    """At a graceful stop, once the disk-writer process has exited: every segment's files were written before its
    records (``writer_jobs.capture_job`` writes the file, the round appends the record), so one ``syncfs`` makes them all
    durable and the segments go — the next start has nothing to recover."""
    d = journal_dir(capture_dir)
    segments = list(d.glob("*.seg")) if d.is_dir() else []
    if not segments:
        return
    sync_filesystem(capture_dir)
    for seg in segments:
        seg.unlink(missing_ok=True)
    (d / DELETED_FILE).unlink(missing_ok=True)
    _fsync_dir(d)


def _base(name: str) -> str:
    return name.split(":2,")[0]


def recover(capture_dir: Path) -> int:
    """Replays the segments left behind into the Maildir (see the module's docstring); returns how many files were
    written again. Runs at the store's start, before its scan, while no writer process runs."""
    d = journal_dir(capture_dir)
    if not d.is_dir():
        return 0
    segments = sorted(d.glob("*.seg"), key=lambda p: p.stat().st_mtime)
    deleted_file = d / DELETED_FILE
    if not segments:
        deleted_file.unlink(missing_ok=True)
        return 0
    try:
        dead = set(deleted_file.read_text().split())
    except FileNotFoundError:
        dead = set()
    msgs: list[tuple[str, str, bytes]] = []
    for seg in segments:
        for kind, id_, name, content in records(seg.read_bytes()):
            if kind == DELETED:
                dead.add(id_)
            else:
                msgs.append((id_, name, content))
    on_disk: dict[str, str] = {}
    for sub in ("new", "cur"):
        try:
            for name in os.listdir(capture_dir / sub):
                on_disk[_base(name)] = f"{sub}/{name}"
        except FileNotFoundError:
            pass
    from courrier.mailbox.durable import write_new  # noqa: PLC0415 — only when there is something to recover

    rewritten = 0
    for id_, name, content in msgs:
        if id_ in dead:
            continue
        rel = on_disk.get(_base(name.rpartition("/")[2]), name)
        path = capture_dir / rel
        try:
            if path.read_bytes() == content:
                continue
        except FileNotFoundError:
            pass
        # missing or torn: written again under the same name (tmp → rename over it)
        tmp = write_new(capture_dir, [content], sync=False)
        os.rename(tmp, path)
        rewritten += 1
    sync_filesystem(capture_dir)
    for seg in segments:
        seg.unlink()
    deleted_file.unlink(missing_ok=True)
    _fsync_dir(d)
    if rewritten or msgs:
        log.event("capture.journal_recovered", segments=len(segments), messages=len(msgs), rewritten=rewritten)
    return rewritten
