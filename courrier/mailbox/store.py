"""The one door to stored mail: where each account's Maildir lives and how a message gets into it.

Local delivery, POP3, IMAP and the web API all go through this module, so there is one place that knows the layout
``data_dir/mail/<domain>/<localpart>/`` (Maildir++) and one place that writes durably.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from courrier.mailbox import folders, maildir
from courrier.mailbox.index import MailIndex
from courrier.mailbox.notify import Notifier
from courrier.mailbox.writer import ProcessWriter

T = TypeVar("T")

# fsync-bound work of readers and maintenance (``run``): enough threads that concurrent fsyncs overlap.
_DISK_THREADS = 16
# Delivery: a few threads, each writing every message queued since its last round (maildir.BatchWriter). More threads
# only add GIL hand-offs: 4 rounds in flight keep the disk as busy as 16 threads did.
_DELIVERY_THREADS = 4
# Messages up to this size are written by the disk-writer process (mailbox/writer.py) — the spool keeps them in memory
# (smtp/reader.py SPOOL_IN_MEMORY), so handing them over costs no disk read on the loop; larger ones stream from the
# spool file in the BatchWriter threads.
PROCESS_MAX = 1 << 20
# Threads of that process. One: it never waits for its own GIL, and its rounds already share directory fsyncs.
# Measured against 2 and 4 (smtp-source, 20 sessions, A/B in one run): 1 thread 1665/1005 msg/s (MX/capture) and
# 0.72/1.25 ms CPU per message, 2 threads 1353/940 and 0.96/1.45; equal at 1 and 100 sessions and at 100 KB.
PROCESS_THREADS = 1


class MailStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "mail"
        self.executor = ThreadPoolExecutor(max_workers=_DISK_THREADS, thread_name_prefix="courrier-disk")
        self.writer = maildir.BatchWriter(_DELIVERY_THREADS, name="courrier-deliver")
        self.process_writer = ProcessWriter(PROCESS_THREADS)
        self.notifier = Notifier()
        self._index: MailIndex | None = None

    @property
    def index(self) -> MailIndex:
        """UIDs and flags (mailbox/index.py), opened on first use so delivery-only callers never touch it."""
        if self._index is None:
            self._index = MailIndex(self.data_dir / "courrier.db", self.data_dir)
        return self._index

    @property
    def capture_dir(self) -> Path:
        """The Maildir of captured messages (capture mode's INBOX)."""
        return self.data_dir / "capture"

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Runs blocking disk/index work on the store's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kw))

    def notify(self, path: Path) -> None:
        """Tells the sessions watching ``path`` (IDLE, selected mailboxes) that it changed. Call on the loop."""
        self.notifier.notify(path)

    def subscribe(self, path: Path, callback: Callable[[], None]) -> Callable[[], None]:
        return self.notifier.subscribe(path, callback)

    def maildir_for(self, account: str) -> Path:
        """``local@domain`` → ``data_dir/mail/domain/local`` (the account's INBOX)."""
        return account_root(self.data_dir, account)

    def provision(self, root: Path) -> bool:
        """An account's default folders, created and subscribed once (folders.provision). Blocking."""
        return folders.provision(root, lambda names: self.index.subscribe_all(root, names))

    def folder_for(self, account: str, folder: str | None) -> Path:
        """A Maildir++ folder (``.Sent``, ``.Junk``…) of the account, or its INBOX when ``folder`` is None."""
        base = self.maildir_for(account)
        if not folder or folder.upper() == "INBOX":
            return base
        if "/" in folder or folder.startswith("."):
            raise ValueError(f"unsafe folder name {folder!r}")
        return base / f".{folder}"

    def deliver_sync(self, copies: list[tuple[Path, bytes]], body_chunks: BodySource,
                     rnd: maildir.Round | None = None) -> list[Path]:
        """Writes one copy per (maildir, prepended headers LF-terminated) with the body converted to LF; blocking.

        With ``rnd`` (a BatchWriter round) the directory fsyncs are left to the round, which runs them before the
        caller is answered."""
        out = []
        for path, headers in copies:
            parts: Iterable[bytes] = [headers, *maildir.crlf_to_lf(body_chunks())]
            out.append(maildir.write_new(path, parts, dir_sync=rnd.sync_dir if rnd is not None else None))
        return out

    def _deliver_job(self, rnd: maildir.Round, copies: list[tuple[Path, bytes]],
                     body_chunks: BodySource) -> list[Path]:
        return self.deliver_sync(copies, body_chunks, rnd)

    async def deliver(self, copies: list[tuple[Path, bytes]], body_chunks: BodySource,
                      size: int | None = None) -> list[Path]:
        """Durable delivery off the event loop: returns once every copy is fsync'ed and renamed into new/ and the
        directory is fsync'ed (one directory fsync shared by the messages of a writer round).

        ``size``: the body's size when the caller knows its chunks are in memory; up to PROCESS_MAX the disk-writer
        process writes it (no GIL shared with the loop), otherwise the BatchWriter threads stream it."""
        if size is not None and size <= PROCESS_MAX:
            body = b"".join(body_chunks())
            paths = await self.process_writer.submit("courrier.mailbox.store:deliver_copies",
                                                     [(str(p), h) for p, h in copies], body)
            return [Path(p) for p in paths]
        return await self.writer.submit(self._deliver_job, copies, body_chunks)

    def close(self) -> None:
        self.process_writer.close()
        self.writer.close()
        self.executor.shutdown(wait=True)


def account_root(data_dir: Path, account: str) -> Path:
    """``local@domain`` → ``data_dir/mail/domain/local``: the one place that knows the layout."""
    local, _, domain = account.rpartition("@")
    if not local or not domain or "/" in account or local.startswith(".") or domain.startswith("."):
        raise ValueError(f"unsafe account address {account!r}")
    return data_dir / "mail" / domain.lower() / local.lower()


def provision_account(data_dir: Path, account: str) -> None:
    """Default folders for a new account, from a command (``courrier user add``) that has no MailStore. Blocking."""
    root = account_root(data_dir, account)
    index = MailIndex(data_dir / "courrier.db", data_dir)
    folders.provision(root, lambda names: index.subscribe_all(root, names))


def deliver_copies(rnd: maildir.Round, copies: list[tuple[str, bytes]], body: bytes) -> list[str]:
    """A disk-writer process job: one Maildir file per (maildir, LF headers) with ``body`` (CRLF) in LF."""
    lf = body.replace(b"\r\n", b"\n")
    return [str(maildir.write_new(Path(p), [headers, lf], round=rnd)) for p, headers in copies]


class BodySource:  # typing helper: a callable returning an iterator of bytes chunks, callable more than once
    def __call__(self) -> Iterable[bytes]: ...
