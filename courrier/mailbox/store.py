"""MaildirStore: the Maildir++ + SQLite implementation of ``mailbox/api.py:MailStore``.

Local delivery, POP3, IMAP, the web inspector and submission's Sent copy reach it only through that interface, so
this is the one place that knows the layout ``data_dir/mail/<domain>/<localpart>/`` (Maildir++: ``.Name`` folders,
``mailbox/folders.py``) and one place that writes durably. Its roots and folders are the Maildir paths; its index is
``mailbox/index.py:MailIndex`` (UIDs and flags in ``courrier.db``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from courrier import log
from courrier.mailbox import folders, maildir
from courrier.mailbox.api import BodySource, Usage, crlf_size
from courrier.mailbox.index import MailIndex
from courrier.mailbox.journal import FILE as JOURNAL_FILE
from courrier.mailbox.journal import Journal, JournalBusy
from courrier.mailbox.notify import Notifier
from courrier.mailbox.writer import PROCESS_MAX, PROCESS_THREADS, ProcessWriter

T = TypeVar("T")

# fsync-bound work of readers and maintenance (``run``): enough threads that concurrent fsyncs overlap.
_DISK_THREADS = 16
# Delivery: a few threads, each writing every message queued since its last round (maildir.BatchWriter). More threads
# only add GIL hand-offs: 4 rounds in flight keep the disk as busy as 16 threads did.
_DELIVERY_THREADS = 4
ARRIVALS_DELAY = 0.05  # seconds: the usage counts of the deliveries meanwhile are written together (``_count``)


class MaildirStore:
    """``api.MailStore`` over Maildir++ folders under ``data_dir/mail`` and the SQLite index in ``courrier.db``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "mail"
        self.executor = ThreadPoolExecutor(max_workers=_DISK_THREADS, thread_name_prefix="courrier-disk")
        self.writer = maildir.BatchWriter(_DELIVERY_THREADS, name="courrier-deliver")
        self.process_writer = ProcessWriter(PROCESS_THREADS)
        self.notifier = Notifier()
        self._index: MailIndex | None = None
        self._arrivals: list[tuple[Path, str, int]] = []  # delivered, not yet counted in the index (``_count``)
        self._arrivals_lock = threading.Lock()  # the loop adds, ``usage`` (a thread) may take them first
        self._roots: dict[str, Path] = {}  # account → its root (``account_root``)
        self.journal: Journal | None = None  # the server's delivery journal (``recover``); None in other commands

    @property
    def index(self) -> MailIndex:
        """UIDs and flags (mailbox/index.py), opened on first use so delivery-only callers never touch it."""
        if self._index is None:
            self._index = MailIndex(self.data_dir / "courrier.db", self.data_dir)
        return self._index

    @property
    def db_path(self) -> Path:
        return self.data_dir / "courrier.db"

    @property
    def capture_root(self) -> Path:
        """The Maildir of captured messages (capture mode's INBOX; the capture store writes it)."""
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

    # ------------------------------------------------------------------ roots

    def account_root(self, account: str) -> Path:
        """``local@domain`` → ``data_dir/mail/domain/local`` (the account's INBOX); remembered per address (every
        delivery asks, and building the path is most of the cost)."""
        root = self._roots.get(account)
        if root is None:
            root = account_root(self.data_dir, account)
            if len(self._roots) >= 10000:
                self._roots.clear()
            self._roots[account] = root
        return root

    def ensure_root(self, root: Path) -> None:
        maildir.ensure(root)

    def prepare_root(self, root: Path) -> None:
        maildir.ensure(root)
        for name in folders.SPECIAL_USE:
            if not folders.exists(root, name):
                try:
                    folders.create(root, name)
                except folders.FolderError:
                    pass

    def provision(self, root: Path) -> bool:
        """An account's default folders, created and subscribed once (folders.provision). Blocking."""
        return folders.provision(root, lambda names: self.index.subscribe_all(root, names))

    # ------------------------------------------------------------------ folders by IMAP name

    def folder(self, root: Path, name: str) -> Path:
        return folders.path_for(root, name)

    def folder_exists(self, root: Path, name: str) -> bool:
        """The folder's Maildir exists (INBOX: the root, before anything was delivered into it)."""
        p = folders.path_for(root, name)
        return (p / "cur").is_dir() or (folders.is_inbox(name) and p.is_dir())

    def list_folders(self, root: Path) -> list[str]:
        return folders.list_names(root)

    def create_folder(self, root: Path, name: str) -> Path:
        return folders.create(root, name)

    def delete_folder(self, root: Path, name: str) -> None:
        self.index.forget(folders.delete(root, name))

    def rename_folder(self, root: Path, old: str, new: str) -> None:
        if folders.is_inbox(old):
            dst = folders.create(root, new)
            snap = self.index.sync(root)
            self.index.copy(root, [m.uid for m in snap.messages], dst, move=True)
            return
        for a, _ in folders.rename(root, old, new):
            self.index.forget(a)

    # ------------------------------------------------------------------ delivery

    def recover(self) -> int:
        """``serve`` at start, before it listens: takes the delivery journal (``mailbox/journal.py``), puts back in
        their Maildirs the messages the last run acknowledged and the disk may have lost, and from now on delivers
        small messages through it (one fdatasync before the 250). Returns how many files were written again. Other
        commands never call it: they deliver through the disk-writer process. Blocking."""
        if self.journal is not None:
            return 0
        journal = Journal(self.data_dir / JOURNAL_FILE, self._settle)
        try:
            restored = journal.open()
        except JournalBusy as e:
            log.event("mailbox.journal_busy", level="warn", error=str(e))
            return 0
        self.journal = journal
        return len(restored)

    async def _settle(self, dirs: list[str]) -> None:
        await self.process_writer.submit("courrier.mailbox.journal:settle_dirs", dirs)

    def folder_for(self, account: str, folder: str | None) -> Path:
        """A Maildir++ folder (``.Sent``, ``.Junk``…) of the account, or its INBOX when ``folder`` is None."""
        base = self.account_root(account)
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
        """Durable delivery: returns once every copy is in new/ and on stable storage.

        ``size``: the body's size when the caller knows its chunks are in memory. Up to PROCESS_MAX: through the
        delivery journal when the server has taken it (``recover``: one fdatasync of the journal, the Maildir
        files settled behind the 250), else written by the disk-writer process (file fsync'ed, renamed into new/,
        directory fsync'ed; no GIL shared with the loop). Larger: streamed by the BatchWriter threads."""
        if size is not None and size <= PROCESS_MAX:
            body = b"".join(body_chunks())
            journal = self.journal
            if journal is not None and journal.accepts(size):  # one fdatasync, no hop (mailbox/journal.py)
                paths = await journal.deliver(copies, body.replace(b"\r\n", b"\n"))
            else:
                paths = [Path(p) for p in await self.process_writer.submit(
                    "courrier.mailbox.store:deliver_copies", [(str(p), h) for p, h in copies], body)]
        else:
            paths = await self.writer.submit(self._deliver_job, copies, body_chunks)
        self._count([(folder, path.name.split(":2,", 1)[0],
                      crlf_size(headers) + (size if size is not None else _file_size(path)))
                     for (folder, headers), path in zip(copies, paths, strict=True)])
        return paths

    def _count(self, items: list[tuple[Path, str, int]]) -> None:
        """Adds delivered messages to the usage (``MailIndex.arrived``): gathered on the loop and written by one
        thread job every ``ARRIVALS_DELAY`` for every delivery meanwhile, so the delivery path pays no database write
        (nor a thread wake-up) of its own; ``usage`` writes what is gathered before it reads. A count lost to a
        failing database is made good when the index next lists the folder."""
        with self._arrivals_lock:
            first = not self._arrivals
            self._arrivals += items
        if first:
            asyncio.get_running_loop().call_later(ARRIVALS_DELAY, self._flush_arrivals)

    def _take_arrivals(self) -> list[tuple[Path, str, int]]:
        with self._arrivals_lock:
            items, self._arrivals = self._arrivals, []
        return items

    def _write_arrivals(self, items: list[tuple[Path, str, int]]) -> None:
        try:
            self.index.arrived(items)
        except Exception as e:  # noqa: BLE001 - the count heals itself at the next listing (see _count)
            log.event("mailbox.usage_not_counted", level="warn", messages=len(items), error=str(e)[:200])

    def _flush_arrivals(self) -> None:
        items = self._take_arrivals()
        if not items:
            return
        try:
            self.executor.submit(self._write_arrivals, items)
        except RuntimeError:  # closing: the next listing counts them
            pass

    def usage(self, root: Path, *, exact: bool = False) -> Usage:
        """``api.MailStore.usage``: the index's counts (``MailIndex.usage``); ``exact`` syncs each folder first.
        Deliveries not yet counted (``_count``) are counted first."""
        if items := self._take_arrivals():
            self._write_arrivals(items)
        if exact and root.is_dir():
            for name in folders.list_names(root):
                p = folders.path_for(root, name)
                if (p / "cur").is_dir():
                    self.index.sync(p)
        return self.index.usage(root)

    def mailbox_id(self, path: Path) -> str:
        """RFC 8474 §4 MAILBOXID: kept in the Maildir itself (``courrier-mailboxid``), so RENAME carries it along and
        a folder created again gets a new one; made on first use, the first writer winning (link is atomic)."""
        return maildir.mailbox_id(path)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()  # settles what the writer process has not yet
        self.process_writer.close()
        self.writer.close()
        if self._arrivals:
            try:
                self.index.arrived(self._arrivals)
            except Exception:  # noqa: BLE001 - counted again at the next listing
                pass
            self._arrivals = []
        self.executor.shutdown(wait=True)


def _file_size(path: Path) -> int:
    """A delivered file's octets: its ``,S=`` name part (maildir.write_new), else the file's size."""
    name = path.name.split(":2,", 1)[0]
    if ",S=" in name:
        try:
            return int(name.rsplit(",S=", 1)[1].split(",", 1)[0])
        except ValueError:
            pass
    try:
        return path.stat().st_size
    except OSError:
        return 0


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
