"""Durability primitives shared by every writer (Maildir delivery, the outbound spool): chasquid's "safeio".

A file is durable once its contents are fsync'ed *and* the directory entry that names it is: a rename is only on
stable storage after the directory is fsync'ed. Directory fsyncs are shared between concurrent writers (group
commit): whoever renamed a file asks for a sync; one fsync covers every rename made before it started.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Makes the entries of directory ``path`` (creations, renames, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirSyncer:
    """Group commit for one directory: ``sync()`` returns once an fsync that started after the caller's rename is
    done. A caller arriving while an fsync runs may not be covered by it, so it waits for the next one, which covers
    everyone who arrived meanwhile: N concurrent writers cost about two fsyncs instead of N."""

    def __init__(self, path: Path, fsync: Callable[[Path], None] = fsync_dir) -> None:
        self.path = path
        self._fsync = fsync
        self._cond = threading.Condition()
        self._requested = 0  # generation of the latest request
        self._done = 0  # generation covered by the last completed fsync
        self._running = False
        self.syncs = 0  # fsyncs actually run (tests and benchmarks read it)

    def sync(self) -> None:
        with self._cond:
            self._requested += 1
            mine = self._requested
            while self._done < mine:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                target = self._requested
                self._cond.release()
                ok = False
                try:
                    self._fsync(self.path)
                    ok = True
                finally:
                    self._cond.acquire()
                    self._running = False
                    if ok:
                        self.syncs += 1
                        self._done = max(self._done, target)
                    self._cond.notify_all()


class DirSyncers:
    """One DirSyncer per directory, made on first use (a Maildir ``new/`` per mailbox)."""

    def __init__(self, fsync: Callable[[Path], None] = fsync_dir) -> None:
        self._fsync = fsync
        self._lock = threading.Lock()
        self._by_path: dict[str, DirSyncer] = {}

    def sync(self, path: Path) -> None:
        key = str(path)
        with self._lock:
            syncer = self._by_path.get(key)
            if syncer is None:
                syncer = self._by_path[key] = DirSyncer(path, self._fsync)
        syncer.sync()
