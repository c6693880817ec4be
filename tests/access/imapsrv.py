"""A real IMAP listener on loopback (its own event loop in a thread) over one account whose INBOX holds the given
messages: the fixture of the per-extension raw-protocol tests (test_imap_sort_thread.py, test_imap_binary.py …)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

from courrier.access.auth import Authenticator
from courrier.access.imap.session import IMAPServer
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import maildir
from courrier.mailbox.store import MaildirStore
from courrier.net.limits import ConnectionLimiter
from courrier.net.listener import StreamListener
from courrier.quota import Quotas
from tests.access.clients import PASSWORD, USER


@contextlib.contextmanager
def listener(tmp_path: Path, messages: list[bytes], *, quota: int = 0) -> Iterator[tuple[int, MaildirStore]]:
    """(port, store); ``messages`` (LF) are written to INBOX in order, so they get UIDs 1, 2, … (and INTERNALDATEs a
    minute apart from 14-Nov-2023 22:13:20 +0000)"""
    cfg = dataclasses.replace(Config(), data_dir=tmp_path, domains=("example.test",))
    accounts = Accounts(cfg.db_path)
    accounts.add(USER, PASSWORD)
    store = MaildirStore(tmp_path)
    box = maildir.ensure(store.account_root(USER))
    for i, data in enumerate(messages):
        # distinct internal dates a minute apart: the index numbers new files by mtime, and two files written within
        # one timestamp tick would be ordered by name (whose microseconds are not zero-padded)
        maildir.write_new(box, [data], mtime=1_700_000_000 + 60 * i)
    quotas = Quotas(accounts, store, default=0)
    if quota:
        accounts.set_quota(USER, quota)
    loop = asyncio.new_event_loop()
    server = IMAPServer(store=store, auth=Authenticator(cfg, accounts, store), tls_context=None,
                        limits=cfg.limits, hostname="mx.test", quotas=quotas)
    lst = StreamListener("imap", server.handler(False), ConnectionLimiter(cfg.limits))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = asyncio.run_coroutine_threadsafe(loop.create_server(lst.factory, "127.0.0.1", 0), loop).result(10)
    try:
        yield srv.sockets[0].getsockname()[1], store
    finally:
        async def stop() -> None:
            srv.close()
            await lst.shutdown()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        store.close()
