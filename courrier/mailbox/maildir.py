"""Maildir++ on disk: atomic, durable writes (tmp/ → fsync → rename into new/ → fsync the directory).

The layout is the one Dovecot and mutt read and write (https://cr.yp.to/proto/maildir.html, Maildir++ folders as
``.Name`` subdirectories, flags in the ``:2,`` info suffix). Files use LF line endings, the convention those programs
expect; the access protocols turn them back into CRLF.

Everything here blocks on the disk: the server calls it from threads — a ``BatchWriter`` on the delivery path, which
writes the messages queued meanwhile in one round and covers all of the round's renames with one directory fsync per
directory (group commit), and keeps several rounds in flight so the disk sees concurrent fsyncs. That is what lets
many sessions share disk flushes without weakening "250 means on disk".
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from courrier.mailbox.api import crlf_to_lf  # noqa: F401  (kept here by name: store.py and its tests use it)
from courrier.safeio import DirSyncers, fsync_dir

if TYPE_CHECKING:
    import asyncio

_counter = itertools.count()
_lock = threading.Lock()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
_pid = os.getpid()  # cached: a getpid() per message name is a system call the hot path does not need


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)
WRITE_BUFFER = 1 << 20  # parts are joined up to this size, so a usual message is one write() call


def unique_name(size: int | None = None) -> str:
    """A Maildir base name: ``<secs>.M<usecs>P<pid>Q<n>.<host>[,S=<size>]`` (Dovecot's style)."""
    t = time.time()
    with _lock:
        n = next(_counter)
    name = f"{int(t)}.M{int(t % 1 * 1e6)}P{_pid}Q{n}.{_HOST}"
    if size is not None:
        name += f",S={size}"
    return name


MAILBOXID_FILE = "courrier-mailboxid"  # RFC 8474 §4, beside courrier-uidvalidity (as Dovecot keeps its mailbox GUID)


def mailbox_id(path: Path) -> str:
    """The Maildir's MAILBOXID (RFC 8474 §4), written on first use: ``F`` and 24 hex digits."""
    f = path / MAILBOXID_FILE
    try:
        return f.read_text().strip()
    except FileNotFoundError:
        pass
    tmp = path / "tmp" / f"{MAILBOXID_FILE}.{unique_name()}"
    ensure(path)
    tmp.write_text("F" + secrets.token_hex(12) + "\n")
    try:
        os.link(tmp, f)  # fails when another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return f.read_text().strip()


def ensure(path: Path) -> Path:
    """Creates a Maildir (cur, new, tmp) if missing; returns its path."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


# Directory fsyncs of concurrent deliveries into one Maildir are shared (group commit, courrier/safeio.py); the
# lambda looks fsync_dir up at call time so tests can observe it.
_dir_syncer = DirSyncers(fsync=lambda p: fsync_dir(p))


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return len(data)


def write_new(maildir: Path, parts: Iterable[bytes], *, sync: bool = True, subdir: str = "new",
              info: str = "", mtime: float | None = None,
              dir_sync: Callable[[Path], None] | None = None, round: Round | None = None) -> Path:
    """Writes one message into ``maildir/tmp``, fsyncs it, renames it into ``new/`` (or ``cur/`` with ``info``).

    Returns the final path. On any failure the tmp file is removed and the error raised: nothing half-written is
    ever visible in new/ or cur/. ``dir_sync`` replaces the directory fsync after the rename (a ``BatchWriter``
    passes one that defers it to the end of its round, where one fsync covers every rename of the round); the
    message is durable only once that has run.

    ``round``: the file is written, and its fsync, rename and directory fsync are left to the round
    (``run_round``), which does them for all its files together; the returned path exists only once the round
    has answered. The caller must not use it before.

    System calls are the cost here (each one is a GIL round trip under load): the Maildir is assumed to exist and
    created only when the open fails, parts are joined so a usual message is one write().
    """
    base = unique_name()
    tmp = maildir / "tmp" / base
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        ensure(maildir)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        try:
            pending: list[bytes] = []
            buffered = 0
            for p in parts:
                pending.append(p)
                buffered += len(p)
                if buffered >= WRITE_BUFFER:
                    size += _write_all(fd, b"".join(pending))
                    pending, buffered = [], 0
            if pending:
                size += _write_all(fd, pending[0] if len(pending) == 1 else b"".join(pending))
            if round is not None and sync and mtime is None:
                final = maildir / subdir / (f"{base},S={size}" + (f":2,{info}" if subdir == "cur" else ""))
                round.commit_later(fd, tmp, final)
                fd = -1  # the round owns it now
                return final
            if sync:
                os.fsync(fd)
        finally:
            if fd >= 0:
                os.close(fd)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        final_name = f"{base},S={size}" + (f":2,{info}" if subdir == "cur" else "")
        target = maildir / subdir
        final = target / final_name
        try:
            os.rename(tmp, final)
        except FileNotFoundError:
            ensure(maildir)  # tmp/ existed but not new/ or cur/: a half-made Maildir
            os.rename(tmp, final)
        if sync:
            (dir_sync or _dir_syncer.sync)(target)
        return final
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Round:
    """What the jobs of one ``BatchWriter`` round share: the directories to fsync before any of them is answered,
    and work done once for all of them (``gather``: e.g. one index transaction for the round's messages)."""

    __slots__ = ("dirs", "gathered", "files", "job")

    def __init__(self) -> None:
        self.dirs: dict[str, Path] = {}
        self.gathered: dict[Any, tuple[Callable[[list[Any]], None], list[tuple[int, Any]]]] = {}
        self.files: list[tuple[int, int, Path, Path]] = []  # (job, fd, tmp, final) written, not yet committed
        self.job = 0  # the index of the job running now

    def sync_dir(self, path: Path) -> None:
        self.dirs.setdefault(str(path), path)

    def commit_later(self, fd: int, tmp: Path, final: Path) -> None:
        """A written file whose fsync, rename and directory fsync the round does (see ``run_round``)."""
        self.files.append((self.job, fd, tmp, final))

    def gather(self, fn: Callable[[list[Any]], None], item: Any) -> None:
        """``fn(items)`` runs once after the round's directory fsyncs, before the answers, with every item given
        for it in the round by a job that succeeded. It must handle its own errors (report them through the items)."""
        self.gathered.setdefault(fn, (fn, []))[1].append((self.job, item))


def _libc_sync_file_range() -> Callable[[int], None] | None:
    """``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: starts the writeback of a file without waiting."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        fn.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lambda fd: None if fn(fd, 0, 0, 2) == 0 else None


_start_writeback = _libc_sync_file_range()


def _commit_files(rnd: Round, failed: dict[int, BaseException]) -> None:
    """The round's files: writeback of all of them started first (so the disk works on them together instead of
    one fsync after the other), then each fsync'ed, closed and renamed into place; directories fsync'ed after.
    A file that fails fails its job (``failed``) and its tmp file is removed."""
    if _start_writeback is not None:
        for _, fd, _, _ in rnd.files:
            _start_writeback(fd)
    synced: list[tuple[int, Path, Path]] = []
    for job, fd, tmp, final in rnd.files:
        try:
            os.fsync(fd)
            synced.append((job, tmp, final))
        except OSError as e:
            failed.setdefault(job, e)
        finally:
            os.close(fd)
    for job, tmp, final in synced:
        if job in failed:
            continue
        try:
            try:
                os.rename(tmp, final)
            except FileNotFoundError:
                ensure(final.parent.parent)  # tmp/ existed but not new/ or cur/: a half-made Maildir
                os.rename(tmp, final)
            rnd.sync_dir(final.parent)
        except OSError as e:
            failed.setdefault(job, e)
    for job, _, tmp, _ in rnd.files:
        if job in failed:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


class BatchWriter:
    """A few threads that write messages durably, many per wake-up — the group commit of the delivery path.

    Why not one executor job per message: each job cost a thread wake-up, a loop wake-up, and its own directory
    fsync; and 16 threads taking turns at the GIL cost the event loop more than the disk did. Here a thread takes
    every job queued since its last round (up to ``max_batch``), runs them one after the other — each writes and
    fsyncs its file and renames it — then fsyncs each directory once for the whole round (``Round.sync_dir``), and
    only then answers all of the round's callers with one call into each event loop. Several threads run rounds
    side by side, so the disk still sees concurrent fsyncs. Nothing is answered before its directory fsync: a 250
    still means on stable storage.
    """

    def __init__(self, threads: int = 4, *, name: str = "courrier-disk", max_batch: int = 32,
                 settle: Callable[[list[tuple[Any, bool, Any]]], None] | None = None) -> None:
        self.max_threads = threads
        self.name = name
        self.max_batch = max_batch
        self._settle = settle or _settle_in_loops  # gets [(token, ok, result or exception)] once per round
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...], Any]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Queues ``fn(round, *args)``; call on the event loop. The future completes after the round's dir fsyncs."""
        import asyncio  # here, not at the top: the disk-writer process imports this module and runs no loop

        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.submit_token(fn, args, (loop, fut))
        return fut

    def submit_token(self, fn: Callable[..., Any], args: tuple[Any, ...], token: Any) -> None:
        """Queues ``fn(round, *args)``; its outcome goes to the ``settle`` hook with ``token``."""
        with self._cond:
            if self._closed:
                raise RuntimeError("BatchWriter is closed")
            self._jobs.append((fn, args, token))
            if self._idle:
                self._cond.notify()
            elif len(self._threads) < self.max_threads:
                t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    if self._closed:
                        return
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                n = min(len(self._jobs), self.max_batch)
                batch = [self._jobs.popleft() for _ in range(n)]
            self._round(batch)

    def _round(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> None:
        run_round(batch, self._settle)

    def close(self) -> None:
        """Finishes the queued jobs, then stops the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()


def run_round(batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]],
              settle: Callable[[list[tuple[Any, bool, Any]]], None]) -> None:
    """Runs each ``fn(round, *args)`` of ``batch``; commits the files they left to the round (``_commit_files``);
    fsyncs each directory the round renamed into once; runs the gathered work; then hands every (token, ok, result
    or exception) to ``settle`` in one call — never before the files and directory entries are on stable storage."""
    rnd = Round()
    results: list[tuple[bool, Any]] = []
    for i, (fn, args, _) in enumerate(batch):
        rnd.job = i
        try:
            results.append((True, fn(rnd, *args)))
        except BaseException as e:  # one failing message must not fail the others
            results.append((False, e))
    failed: dict[int, BaseException] = {}
    if rnd.files:
        _commit_files(rnd, failed)
    for path in rnd.dirs.values():
        try:
            _dir_syncer.sync(path)
        except OSError as e:  # not durable: every job of the round fails
            failed.update((i, e) for i in range(len(batch)) if i not in failed)
    for i, e in failed.items():
        results[i] = (False, e)
    for fn, items in rnd.gathered.values():
        ok_items = [item for job, item in items if results[job][0]]
        if not ok_items:
            continue
        try:
            fn(ok_items)
        except Exception:  # gathered work reports through its items; a bug there must not lose the answers
            pass
    try:
        settle([(token, ok, res) for (_, _, token), (ok, res) in zip(batch, results, strict=True)])
    except Exception:  # nobody left to answer (a closed loop, a closed pipe)
        pass


def _settle_in_loops(items: list[tuple[Any, bool, Any]]) -> None:
    """The settle hook of ``BatchWriter.submit``: one call into each waiting event loop per round."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for (loop, fut), ok, res in items:
        by_loop.setdefault(loop, []).append((fut, ok, res))
    for loop, futs in by_loop.items():
        try:
            loop.call_soon_threadsafe(settle_futures, futs)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def settle_futures(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """On the loop: completes each future with its result or exception."""
    for fut, ok, res in items:
        if fut.done():  # cancelled (the client went away): the message is stored all the same
            continue
        if ok:
            fut.set_result(res)
        else:
            fut.set_exception(res)
