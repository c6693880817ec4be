"""The delivery journal: a message is on stable storage before its 250 after one ``fdatasync``, and in its Maildir at once.

Why. A durable Maildir write costs a file fsync and a directory fsync (the new name's entry): two commits of the file
system's own journal and two flushes of the device's cache, about 1 ms each on this kind of disk, which a lone SMTP
session waits for on every message, plus the hop to the thread or process that does them. Here the message is
appended to a journal file written in full when it was made — its size and blocks never change, so ``fdatasync``
writes data blocks and flushes the device, no metadata commit — and the same bytes go to the Maildir with no sync at
all. The event loop does it itself: the path of one message has no thread or process hop, and what one iteration of
the loop appended shares one ``fdatasync`` (group commit).

Per message, on the event loop (``Journal.deliver``):

1. each copy is written to ``<folder>/tmp/<base>`` (no sync);
2. a record — the folders, the final names, the bytes — is appended to the journal;
3. at the end of the loop's iteration one ``fdatasync`` covers every record appended in it;
4. ``tmp/<base>`` is renamed ``new/<base>,S=<size>``: visible to IMAP, POP3 and Dovecot before the 250;
5. the caller answers 250.

Behind the 250 the Maildirs are settled in rounds, by the disk-writer process (``mailbox/writer.py``, its own GIL):
one ``syncfs`` per file system holding the folders written (their files and directory entries reach the disk in
one commit and one flush, where a file and a directory fsync per message cost two each), then a checkpoint record:
every message up to its sequence number is in the Maildir for good. A round starts ``SETTLE_INTERVAL`` after the
first message it covers, or at once when half the journal awaits it; a clean stop settles everything.

Recovery (``Journal.open``, at ``serve`` start, before a listener is bound): every message record after the last
checkpoint is compared with its Maildir — a file of that name in ``new/`` or ``cur/`` (any flags) with the same bytes
needs nothing; a missing or different one (the machine lost power before the file reached the disk; the server was
killed between the sync and the rename) is written again from the record, durably. Then the journal starts over at
offset 0 under a new epoch.

Record: ``CJ1`` | epoch (4) | seq (8) | kind (1) | length (4) | CRC-32 of those 20 octets and the payload (4) |
payload. Reading stops at the first record whose magic, epoch, sequence (the previous + 1), length or checksum is
wrong: the torn tail of an append that was never acknowledged is ignored. A full journal wraps to offset 0 once every
message in it is settled (a checkpoint record at 0, synced, then the new records after it).

Given up, knowingly: a message expunged or moved by an IMAP client between its 250 and its checkpoint (about a
second) comes back in its folder if the machine loses power in that window — at-least-once, like any delivery
repeated after a crash. ``syncfs`` writes back everything dirty on the file system, other programs' files too: on a
machine shared with busy writers a settling round takes longer (it is off the answer's path). A failed ``fdatasync``
puts the journal out of use (the state of the page cache is unknown after one): later messages take the store's
other durable path.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import mmap
import os
import secrets
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from courrier import log
from courrier.mailbox.maildir import ensure, unique_name
from courrier.safeio import fsync_dir

FILE = "delivery.journal"  # in data_dir, beside courrier.db (not under mail/: no Maildir reader sees it)
SIZE = 32 << 20  # ~15,000 messages of 2 KB, ~320 of 100 KB between wraps
WRITTEN = 8 << 20  # written with zeros when the file is made; the rest only allocated (see ``Journal.open``)
MAX_RECORD = 1 << 20  # larger messages take the store's other path
SLOW_SYNC = 0.02  # seconds: an fdatasync slower than this sends the next second's syncs to a thread
SETTLE_INTERVAL = 1.0  # seconds from a round's first message to its syncfs (sooner when the journal fills)
MAGIC = b"CJ1"
MESSAGE, CHECKPOINT = 1, 2
_HEAD = struct.Struct("<3sIQBI")  # magic, epoch, seq, kind, payload length
_CRC = struct.Struct("<I")
HEAD = _HEAD.size + _CRC.size
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_CHECKPOINT_LEN = HEAD + _U64.size
RESERVE = 64 * _CHECKPOINT_LEN  # kept free at the end for checkpoint records

# (folders written) → their file systems synced; the store runs it in the disk-writer process (``settle_dirs``)
Settler = Callable[[list[str]], Awaitable[Any]]


class JournalBusy(Exception):
    """Another process (a running server) holds the journal."""


def _record(epoch: int, seq: int, kind: int, parts: list[bytes]) -> list[bytes]:
    n = sum(len(p) for p in parts)
    head = _HEAD.pack(MAGIC, epoch, seq, kind, n)
    crc = zlib.crc32(head)
    for p in parts:
        crc = zlib.crc32(p, crc)
    return [head, _CRC.pack(crc), *parts]


def _message_meta(items: list[tuple[str, str, bytes]]) -> bytes:
    """(folder, final name, headers) of each copy; the body follows the meta in the payload."""
    out = [_U16.pack(len(items))]
    for folder, name, headers in items:
        f, n = os.fsencode(folder), name.encode()
        out += (_U16.pack(len(f)), f, _U16.pack(len(n)), n, _U32.pack(len(headers)), headers)
    return b"".join(out)


def decode_message(payload: bytes | memoryview) -> list[tuple[str, str, bytes]]:
    """A message record's copies as (folder, final name, file content)."""
    view = memoryview(payload)
    (n,) = _U16.unpack_from(view, 0)
    pos = 2
    heads = []
    for _ in range(n):
        (fl,) = _U16.unpack_from(view, pos)
        folder = os.fsdecode(bytes(view[pos + 2:pos + 2 + fl]))
        pos += 2 + fl
        (nl,) = _U16.unpack_from(view, pos)
        name = bytes(view[pos + 2:pos + 2 + nl]).decode()
        pos += 2 + nl
        (hl,) = _U32.unpack_from(view, pos)
        heads.append((folder, name, bytes(view[pos + 4:pos + 4 + hl])))
        pos += 4 + hl
    body = bytes(view[pos:])
    return [(folder, name, headers + body) for folder, name, headers in heads]


def scan(data: bytes | memoryview | mmap.mmap) -> list[tuple[int, int, memoryview]]:
    """The valid records from offset 0 as (seq, kind, payload), up to the first that is not (a torn tail, the
    previous epoch's leftovers, zeros)."""
    view = memoryview(data)
    out: list[tuple[int, int, memoryview]] = []
    off, epoch, prev = 0, None, None
    while off + HEAD <= len(view):
        magic, ep, seq, kind, n = _HEAD.unpack_from(view, off)
        if magic != MAGIC or (epoch is not None and ep != epoch) or (prev is not None and seq != prev + 1):
            break
        end = off + HEAD + n
        if end > len(view):
            break
        (crc,) = _CRC.unpack_from(view, off + _HEAD.size)
        payload = view[off + HEAD:end]
        if zlib.crc32(payload, zlib.crc32(view[off:off + _HEAD.size])) != crc:
            break
        out.append((seq, kind, payload))
        off, epoch, prev = end, ep, seq
    return out


def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None

    def syncfs(fd: int) -> int:
        if fn(fd) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return 0
    return syncfs


_syncfs = _libc_syncfs()


def sync_dirs(dirs: list[str]) -> None:
    """Makes everything written under ``dirs`` durable: one ``syncfs`` per file system among them (``os.sync``
    where the C library has none). A directory gone meanwhile (a folder deleted) needs nothing."""
    seen: set[int] = set()
    for d in dirs:
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            dev = os.fstat(fd).st_dev
            if dev in seen:
                continue
            seen.add(dev)
            if _syncfs is None:
                os.sync()
                return
            _syncfs(fd)
        finally:
            os.close(fd)


def settle_dirs(rnd: Any, dirs: list[str]) -> None:
    """The disk-writer process job (``mailbox/writer.py``) behind ``MaildirStore``'s journal: ``sync_dirs``."""
    sync_dirs(dirs)


class _Pending:
    """A message record appended, waiting for its fdatasync: then its copies are linked into new/."""

    __slots__ = ("seq", "copies", "fut")

    def __init__(self, seq: int, copies: list[tuple[str, str, str]], fut: asyncio.Future[list[Path]]) -> None:
        self.seq = seq
        self.copies = copies  # (folder, tmp path, final path)
        self.fut = fut


class Journal:
    """One server's delivery journal (see the module docstring). ``open`` (blocking) recovers and takes the file;
    ``deliver`` runs on the event loop; ``close`` (blocking) settles everything."""

    def __init__(self, path: Path, settle: Settler | None = None, *, size: int = SIZE) -> None:
        self.path = path
        self.size = size
        self.max_record = min(MAX_RECORD, size // 8)
        self.settle = settle
        self.fd = -1
        self.epoch = 0
        self.seq = 0  # the last sequence number given
        self.offset = 0  # where the next record goes (buffered ones included)
        self.broken: OSError | None = None
        self._chunks: list[bytes] = []  # appended, not yet written: they start at _chunks_at
        self._chunks_at = 0
        self._chunks_len = 0
        self._waiting: list[_Pending] = []
        self._sync_loop: asyncio.AbstractEventLoop | None = None  # a sync is scheduled on it
        self._threaded_until = 0.0  # monotonic time until which syncs run in ``_thread`` (a slow disk)
        self._thread: ThreadPoolExecutor | None = None
        self._in_thread = False  # a sync is running in the thread
        self._open: dict[int, None] = {}  # message records not settled yet, in sequence order
        self._to_settle: list[tuple[int, str]] = []  # (seq, folder) renamed into new/, not yet settled
        self._to_settle_from = 0  # the journal offset where the records of the next round start
        self._settle_handle: asyncio.TimerHandle | None = None
        self._settling: asyncio.Task[None] | None = None
        self._in_flight: list[tuple[int, str]] = []  # the settle round running now
        self._checkpointed = 0  # the last checkpoint appended
        self._progress: list[asyncio.Future[None]] = []  # woken whenever records settle (a wrap waits on it)
        self._wrapping: asyncio.Future[None] | None = None
        self.syncs = 0  # fdatasyncs done (tests, benchmarks)
        self.wraps = 0
        self.restored: list[Path] = []  # files written again by the recovery

    # ------------------------------------------------------------------ start and stop (blocking)

    def open(self) -> list[Path]:
        """Takes the journal (``JournalBusy`` when another process holds it), makes it when missing, recovers what
        the last run acknowledged but did not settle, and starts a new epoch. Returns the files written again."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JournalBusy(f"{self.path} is in use by another process") from None
            have = os.fstat(fd).st_size
            if have < self.size:
                # The first WRITTEN octets are written with zeros now, so an fdatasync there changes no metadata
                # (blocks allocated and written, size final); the rest is allocated only — the first lap through it
                # converts extents, one journal commit per fdatasync, as the file is then written. A test server
                # never gets that far; a busy one once.
                zeros = bytes(1 << 20)
                pos = have
                end = min(self.size, max(have, WRITTEN))
                while pos < end:
                    pos += os.pwrite(fd, zeros[:min(len(zeros), end - pos)], pos)
                try:
                    os.posix_fallocate(fd, 0, self.size)
                except OSError:  # a file system without it: zeros, as for the first part
                    while pos < self.size:
                        pos += os.pwrite(fd, zeros[:min(len(zeros), self.size - pos)], pos)
                os.fsync(fd)
                fsync_dir(self.path.parent)
            else:
                self.size = have
                self.max_record = min(MAX_RECORD, self.size // 8)
            old_epoch = self._recover(fd)
            self.epoch = old_epoch
            while self.epoch == old_epoch:
                self.epoch = secrets.randbits(32)
            self.seq = 1
            first = b"".join(_record(self.epoch, 1, CHECKPOINT, [_U64.pack(0)]))
            os.pwrite(fd, first, 0)
            os.fdatasync(fd)
            self.offset = self._chunks_at = len(first)
            self._checkpointed = 1
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self.restored

    def _recover(self, fd: int) -> int:
        """Writes again every message after the last checkpoint that is not whole in its Maildir; returns the
        epoch read (0: none)."""
        with mmap.mmap(fd, self.size, access=mmap.ACCESS_READ) as mm:
            records = scan(mm)
            epoch = _HEAD.unpack_from(mm, 0)[1] if records else 0
            done = max((_U64.unpack(p)[0] for _, kind, p in records if kind == CHECKPOINT), default=0)
            todo = [bytes(p) for seq, kind, p in records if kind == MESSAGE and seq > done]
            del records
        dirs: set[Path] = set()
        cur_names: dict[Path, list[str]] = {}
        for payload in todo:
            for folder, name, content in decode_message(payload):
                path = _restore(Path(folder), name, content, cur_names)
                if path is not None:
                    self.restored.append(path)
                    dirs.add(path.parent)
        for d in dirs:
            fsync_dir(d)
        if todo:
            log.event("mailbox.journal_recovered", records=len(todo), restored=len(self.restored))
        return epoch

    def close(self) -> None:
        """Settles everything in this process (the loop may be gone) and releases the file."""
        if self.fd < 0:
            return
        if self._thread is not None:
            self._thread.shutdown(wait=True)  # a sync in flight finishes before the file is closed
            self._threaded_until = 0.0
        try:
            if self._waiting or self._chunks:
                self._sync()
            items, self._to_settle = self._in_flight + self._to_settle, []
            if items and self.broken is None:
                sync_dirs(sorted({d for _, d in items}))
                for seq, _ in items:
                    self._open.pop(seq, None)
                if not self._open and self.seq > self._checkpointed and self._room(_CHECKPOINT_LEN):
                    self._append_checkpoint(self.seq)
                    self._write_chunks()
                    os.fdatasync(self.fd)
        except OSError as e:
            log.event("mailbox.journal_close_failed", level="error", error=str(e))
        finally:
            if self._settle_handle is not None:
                self._settle_handle.cancel()
            os.close(self.fd)
            self.fd = -1

    # ------------------------------------------------------------------ on the event loop

    def accepts(self, size: int) -> bool:
        """Whether a message of about ``size`` octets goes through the journal."""
        return self.fd >= 0 and self.broken is None and size <= self.max_record

    async def deliver(self, copies: list[tuple[Path, bytes]], body: bytes) -> list[Path]:
        """One file per (folder, LF headers) with ``body`` (LF); returns once the record is synced and the files are
        in ``new/``. Raises OSError (nothing delivered) on a failed write or sync."""
        need = HEAD + len(body) + sum(len(h) + len(str(f)) + 300 for f, h in copies)
        while self._wrapping is not None or not self._room(need, RESERVE):
            await self._wrap()
        if self.broken is not None:
            raise OSError(self.broken.errno or errno.EIO, f"delivery journal out of use: {self.broken}")
        written: list[tuple[str, str, str]] = []
        meta: list[tuple[str, str, bytes]] = []
        try:
            for folder, headers in copies:
                base = unique_name()
                name = f"{base},S={len(headers) + len(body)}"
                d = str(folder)
                tmp = f"{d}/tmp/{base}"
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except FileNotFoundError:
                    ensure(folder)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                written.append((d, tmp, f"{d}/new/{name}"))
                try:
                    _writev_all(fd, [headers, body])
                finally:
                    os.close(fd)
                meta.append((d, name, headers))
        except BaseException:
            _unlink_all(t for _, t, _ in written)
            raise
        self.seq += 1
        seq = self.seq
        self._add(_record(self.epoch, seq, MESSAGE, [_message_meta(meta), body]))
        fut: asyncio.Future[list[Path]] = asyncio.get_running_loop().create_future()
        self._open[seq] = None
        self._waiting.append(_Pending(seq, written, fut))
        self._schedule_sync()
        return await fut

    def _room(self, n: int, reserve: int = 0) -> bool:
        return self.offset + n <= self.size - reserve

    def _add(self, parts: list[bytes]) -> None:
        self._chunks += parts
        n = sum(len(p) for p in parts)
        self._chunks_len += n
        self.offset += n

    def _append_checkpoint(self, upto: int) -> None:
        self.seq += 1
        self._add(_record(self.epoch, self.seq, CHECKPOINT, [_U64.pack(upto)]))
        self._checkpointed = upto

    def _schedule_sync(self) -> None:
        if self._sync_loop is None and not self._in_thread:  # a sync in the thread schedules the next one
            loop = asyncio.get_running_loop()
            self._sync_loop = loop
            loop.call_soon(self._sync)  # after this iteration's other callbacks: they share the fdatasync

    def _write_chunks(self) -> None:
        chunks, at = self._chunks, self._chunks_at
        self._chunks, self._chunks_len = [], 0
        self._chunks_at = self.offset
        pos = 0
        while pos < len(chunks):
            group = chunks[pos:pos + 512]
            want = sum(len(c) for c in group)
            done = os.pwritev(self.fd, group, at)
            if done != want:  # short write: the rest one by one
                data = b"".join(group)[done:]
                at2 = at + done
                while data:
                    k = os.pwrite(self.fd, data, at2)
                    data, at2 = data[k:], at2 + k
            at += want
            pos += 512

    def _sync(self) -> None:
        """Writes what was appended, one fdatasync, then renames each synced message into new/ and answers it.

        The fdatasync runs on the loop (no hop) unless one took longer than ``SLOW_SYNC`` in the last second: a
        stalled disk would freeze every session of the server, so for that second the syncs go to a thread."""
        self._sync_loop = None
        waiting, self._waiting = self._waiting, []
        if self.fd < 0:
            err = OSError(errno.EBADF, "delivery journal closed")
            for p in waiting:
                self._fail(p, err)
            return
        try:
            if self._chunks:
                self._write_chunks()
            if time.monotonic() < self._threaded_until:
                if self._thread is None:
                    self._thread = ThreadPoolExecutor(1, thread_name_prefix="courrier-journal")
                self._in_thread = True
                loop = asyncio.get_running_loop()
                loop.run_in_executor(self._thread, self._fdatasync).add_done_callback(
                    lambda f: self._after_thread(f, waiting))
                return
            self._fdatasync()
        except OSError as e:
            self._failed(waiting, e)
            return
        self._synced(waiting)

    def _fdatasync(self) -> None:
        t = time.monotonic()
        os.fdatasync(self.fd)
        self.syncs += 1
        if time.monotonic() - t > SLOW_SYNC:
            self._threaded_until = time.monotonic() + 1.0

    def _after_thread(self, f: asyncio.Future[None], waiting: list[_Pending]) -> None:
        self._in_thread = False
        err = OSError(errno.EIO, "journal sync cancelled") if f.cancelled() else f.exception()
        if err is not None:
            self._failed(waiting, err if isinstance(err, OSError) else OSError(errno.EIO, repr(err)))
        else:
            self._synced(waiting)
        if self._waiting or self._chunks:
            self._schedule_sync()

    def _failed(self, waiting: list[_Pending], e: OSError) -> None:
        if self.broken is None:
            self.broken = e
            log.event("mailbox.journal_failed", level="error", error=str(e))
        for p in waiting:
            self._fail(p, e)

    def _synced(self, waiting: list[_Pending]) -> None:
        for p in waiting:
            try:
                paths = _rename(p.copies)
            except OSError as e:
                self._fail(p, e)
                continue
            self._to_settle += [(p.seq, d) for d, _, _ in p.copies]
            if not p.fut.done():  # cancelled (the client went away): delivered all the same
                p.fut.set_result(paths)
        if self._to_settle:
            self._schedule_settle()

    def _fail(self, p: _Pending, e: OSError) -> None:
        _unlink_all(t for _, t, _ in p.copies)
        self._open.pop(p.seq, None)
        if not p.fut.done():
            p.fut.set_exception(OSError(e.errno, e.strerror or str(e)))

    # ------------------------------------------------------------------ behind the 250

    def _schedule_settle(self) -> None:
        if self._settling is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # ``close`` without a loop: it settles them itself
            return
        due = (self.offset - self._to_settle_from) % self.size >= self.size // 2
        if due:
            if self._settle_handle is not None:
                self._settle_handle.cancel()
            self._start_settle()
        elif self._settle_handle is None:
            self._settle_handle = asyncio.get_running_loop().call_later(SETTLE_INTERVAL, self._start_settle)

    def _start_settle(self) -> None:
        self._settle_handle = None
        if self._settling is None and self._to_settle:
            self._settling = asyncio.get_running_loop().create_task(self._settle_rounds())

    async def _settle_rounds(self) -> None:
        try:
            while self._to_settle and self.fd >= 0:
                items, self._to_settle = self._to_settle, []
                self._in_flight = items
                self._to_settle_from = self.offset
                dirs = sorted({d for _, d in items})
                try:
                    if self.settle is not None:
                        await self.settle(dirs)
                    else:
                        await asyncio.to_thread(sync_dirs, dirs)
                except OSError as e:  # the writer process died, a full disk…: the records stay, tried again
                    log.event("mailbox.journal_settle_failed", level="warn", messages=len(items), error=str(e))
                    self._in_flight = []
                    self._to_settle[:0] = items
                    await asyncio.sleep(1.0)
                    continue
                self._in_flight = []
                for seq, _ in items:
                    self._open.pop(seq, None)
                upto = next(iter(self._open)) - 1 if self._open else self.seq
                if upto > self._checkpointed and self._room(_CHECKPOINT_LEN):
                    self._append_checkpoint(upto)
                    self._schedule_sync()
                progress, self._progress = self._progress, []
                for f in progress:
                    if not f.done():
                        f.set_result(None)
        finally:
            self._settling = None
            if self._to_settle:
                self._schedule_settle()

    async def _wrap(self) -> None:
        """The journal is full: once every message in it is settled, a checkpoint at offset 0 (synced at once)
        starts the next lap. Deliveries wait meanwhile."""
        if self._wrapping is not None:
            await asyncio.shield(self._wrapping)
            return
        loop = asyncio.get_running_loop()
        self._wrapping = loop.create_future()
        try:
            while self._open:
                if self._settle_handle is not None:
                    self._settle_handle.cancel()
                    self._settle_handle = None
                self._start_settle()
                if self._sync_loop is not None or self._waiting or self._in_thread:
                    await asyncio.sleep(0.001 if self._in_thread else 0)  # the pending sync renames them first
                    continue
                if self._settling is None and not self._to_settle:  # nothing can settle them: a bug, not a hang
                    log.event("mailbox.journal_lost_track", level="error", records=len(self._open))
                    self._open.clear()
                    break
                f = loop.create_future()
                self._progress.append(f)
                await f
            if self._chunks:
                self._write_chunks()
            self.offset = self._chunks_at = 0
            self._append_checkpoint(self.seq)
            self._write_chunks()
            os.fdatasync(self.fd)
            self.wraps += 1
        except OSError as e:
            if self.broken is None:
                self.broken = e
                log.event("mailbox.journal_failed", level="error", error=str(e))
        finally:
            w, self._wrapping = self._wrapping, None
            w.set_result(None)


def _writev_all(fd: int, parts: list[bytes]) -> None:
    n = os.writev(fd, parts)
    want = sum(len(p) for p in parts)
    if n < want:  # short write (rare on a regular file): the rest in plain writes
        rest = memoryview(b"".join(parts))[n:]
        while rest:
            rest = rest[os.write(fd, rest):]


def _unlink_all(paths: Any) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _rename(copies: list[tuple[str, str, str]]) -> list[Path]:
    """Each copy's tmp/ file renamed to its new/ name."""
    out = []
    for d, tmp, final in copies:
        try:
            os.rename(tmp, final)
        except FileNotFoundError:
            ensure(Path(d))  # tmp/ there but not new/: a half-made Maildir
            os.rename(tmp, final)
        out.append(Path(final))
    return out


def _restore(folder: Path, name: str, content: bytes, cur_names: dict[Path, list[str]]) -> Path | None:
    """Recovery of one copy: None when the Maildir has it whole (in new/, or in cur/ under any flags); else the
    path written again (durably, the directory fsync left to the caller)."""
    ensure(folder)
    found = folder / "new" / name
    if not found.exists():
        names = cur_names.get(folder)
        if names is None:
            names = cur_names[folder] = os.listdir(folder / "cur")
        match = next((n for n in names if n == name or n.startswith(name + ":")), None)
        found = folder / "cur" / match if match else None  # type: ignore[assignment]
    base = name.split(",S=", 1)[0]
    if found is not None:
        try:
            if found.read_bytes() == content:
                _unlink_all([folder / "tmp" / base])
                return None
        except FileNotFoundError:
            found = None  # type: ignore[assignment]
    target = found if found is not None else folder / "new" / name
    tmp = folder / "tmp" / f"{base}.restore"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _writev_all(fd, [content])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    _unlink_all([folder / "tmp" / base])
    return target
