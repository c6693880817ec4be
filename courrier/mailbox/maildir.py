"""Maildir++ on disk: atomic, durable writes (tmp/ → fsync → rename into new/ → fsync the directory).

The layout is the one Dovecot and mutt read and write (https://cr.yp.to/proto/maildir.html, Maildir++ folders as
``.Name`` subdirectories, flags in the ``:2,`` info suffix). Files use LF line endings, the convention those programs
expect; the access protocols turn them back into CRLF.

Everything here blocks on the disk: the server calls it from a thread pool. Concurrent fsyncs from several threads
are merged by the filesystem's journal (ext4 commits them together), which is the group commit that lets many
sessions share one disk flush without weakening "250 means on disk".
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

_counter = itertools.count()
_lock = threading.Lock()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def unique_name(size: int | None = None) -> str:
    """A Maildir base name: ``<secs>.M<usecs>P<pid>Q<n>.<host>[,S=<size>]`` (Dovecot's style)."""
    t = time.time()
    with _lock:
        n = next(_counter)
    name = f"{int(t)}.M{int(t % 1 * 1e6)}P{os.getpid()}Q{n}.{_HOST}"
    if size is not None:
        name += f",S={size}"
    return name


def ensure(path: Path) -> Path:
    """Creates a Maildir (cur, new, tmp) if missing; returns its path."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirSyncer:
    """Group commit for directory fsyncs: renames into the same ``new/`` share one fsync.

    A caller whose rename is done asks for a sync; if one is already running it may have started before the rename,
    so the caller waits for the *next* one, which then covers every rename requested meanwhile. Under load, N
    concurrent deliveries into one Maildir cost about two directory fsyncs instead of N.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._state: dict[str, list[int]] = {}  # path → [requested, done, running]

    def sync(self, path: Path) -> None:
        key = str(path)
        with self._cond:
            st = self._state.setdefault(key, [0, 0, 0])
            st[0] += 1
            target = st[0]
            while st[1] < target:
                if st[2]:
                    self._cond.wait()
                    continue
                st[2] = 1
                cover = st[0]
                self._cond.release()
                try:
                    fsync_dir(path)
                finally:
                    self._cond.acquire()
                    st[2] = 0
                    self._cond.notify_all()
                st[1] = max(st[1], cover)
            if st[1] >= st[0] and not st[2]:
                self._state.pop(key, None)


_dir_syncer = _DirSyncer()


def crlf_to_lf(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Streams CRLF → LF, handling a CR that ends one chunk and an LF that starts the next."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        if data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"
        else:
            carry = b""
        yield data.replace(b"\r\n", b"\n")
    if carry:
        yield carry


def write_new(maildir: Path, parts: Iterable[bytes], *, sync: bool = True, subdir: str = "new",
              info: str = "", mtime: float | None = None) -> Path:
    """Writes one message into ``maildir/tmp``, fsyncs it, renames it into ``new/`` (or ``cur/`` with ``info``).

    Returns the final path. On any failure the tmp file is removed and the error raised: nothing half-written is
    ever visible in new/ or cur/.
    """
    ensure(maildir)
    base = unique_name()
    tmp = maildir / "tmp" / base
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        try:
            for p in parts:
                view = memoryview(p)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                    size += n
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        final_name = f"{base},S={size}" + (f":2,{info}" if subdir == "cur" else "")
        final = maildir / subdir / final_name
        os.rename(tmp, final)
        if sync:
            _dir_syncer.sync(maildir / subdir)
        return final
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
