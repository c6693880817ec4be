"""The one door to stored mail: where each account's Maildir lives and how a message gets into it.

Local delivery, POP3, IMAP and the web API all go through this module, so there is one place that knows the layout
``data_dir/mail/<domain>/<localpart>/`` (Maildir++) and one place that writes durably.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from courrier.mailbox import maildir

# fsync-bound work: enough threads that concurrent messages share journal commits (see maildir.py).
_DISK_THREADS = 16


class MailStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "mail"
        self.executor = ThreadPoolExecutor(max_workers=_DISK_THREADS, thread_name_prefix="courrier-disk")

    def maildir_for(self, account: str) -> Path:
        """``local@domain`` → ``data_dir/mail/domain/local`` (the account's INBOX)."""
        local, _, domain = account.rpartition("@")
        if not local or not domain or "/" in account or local.startswith(".") or domain.startswith("."):
            raise ValueError(f"unsafe account address {account!r}")
        return self.root / domain.lower() / local.lower()

    def folder_for(self, account: str, folder: str | None) -> Path:
        """A Maildir++ folder (``.Sent``, ``.Junk``…) of the account, or its INBOX when ``folder`` is None."""
        base = self.maildir_for(account)
        if not folder or folder.upper() == "INBOX":
            return base
        if "/" in folder or folder.startswith("."):
            raise ValueError(f"unsafe folder name {folder!r}")
        return base / f".{folder}"

    def deliver_sync(self, copies: list[tuple[Path, bytes]], body_chunks: BodySource) -> list[Path]:
        """Writes one copy per (maildir, prepended headers LF-terminated) with the body converted to LF; blocking."""
        out = []
        for path, headers in copies:
            parts: Iterable[bytes] = [headers, *maildir.crlf_to_lf(body_chunks())]
            out.append(maildir.write_new(path, parts))
        return out

    async def deliver(self, copies: list[tuple[Path, bytes]], body_chunks: BodySource) -> list[Path]:
        """Durable delivery off the event loop: returns once every copy is fsync'ed and renamed into new/."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.deliver_sync, copies, body_chunks)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class BodySource:  # typing helper: a callable returning an iterator of bytes chunks, callable more than once
    def __call__(self) -> Iterable[bytes]: ...
