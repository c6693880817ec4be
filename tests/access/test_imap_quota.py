"""IMAP QUOTA (RFC 9208) over a real listener with Python's imaplib: the capability after login, GETQUOTAROOT and
GETQUOTA numbers from the account's files, SETQUOTA refused, NO [OVERQUOTA] for APPEND and COPY with nothing
stored, and MOVE allowed (it adds nothing)."""

from __future__ import annotations

import asyncio
import dataclasses
import imaplib
import threading

import pytest

from courrier.access.auth import Authenticator
from courrier.access.imap.session import IMAPServer
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import maildir
from courrier.mailbox.api import crlf_size
from courrier.mailbox.store import MaildirStore
from courrier.net.limits import ConnectionLimiter
from courrier.net.listener import StreamListener
from courrier.quota import Quotas
from tests.access.clients import PASSWORD, USER

MSG = b"Subject: m\n\n" + b"x" * 2000 + b"\n"


@pytest.fixture
def served(tmp_path):
    cfg = dataclasses.replace(Config(), data_dir=tmp_path, domains=("example.test",))
    accounts = Accounts(cfg.db_path)
    accounts.add(USER, PASSWORD)
    store = MaildirStore(tmp_path)
    box = maildir.ensure(store.account_root(USER))
    for _ in range(2):
        maildir.write_new(box, [MSG])
    quotas = Quotas(accounts, store, default=0)
    loop = asyncio.new_event_loop()
    ready: dict[str, int] = {}
    started = threading.Event()

    async def serve() -> None:
        server = IMAPServer(store=store, auth=Authenticator(cfg, accounts, store), tls_context=None,
                            limits=cfg.limits, hostname="mx.test", quotas=quotas)
        lst = StreamListener("imap", server.handler(False), ConnectionLimiter(cfg.limits))
        srv = await loop.create_server(lst.factory, "127.0.0.1", 0)
        ready["imap"] = srv.sockets[0].getsockname()[1]
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield ready["imap"], accounts, store
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    store.close()


def login(port: int) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", port)
    assert "QUOTA" not in c.capabilities  # RFC 9208 §3.1: the account's limits exist once logged in
    c.login(USER, PASSWORD)
    typ, caps = c.capability()
    assert {"QUOTA", "QUOTA=RES-STORAGE"} <= set(caps[0].decode().split())
    return c


def test_getquotaroot_and_getquota_count_the_files(served):
    port, accounts, store = served
    used_kib = (2 * crlf_size(MSG) + 1023) // 1024
    c = login(port)
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK" and data == [[b'INBOX ""'], [b'"" ()']]  # no limit: a root with no resource limited
    accounts.set_quota(USER, 100 * 1024)
    typ, data = c.getquotaroot("INBOX")
    assert data == [[b'INBOX ""'], [f'"" (STORAGE {used_kib} 100)'.encode()]]
    typ, data = c.getquota('""')
    assert typ == "OK" and data == [f'"" (STORAGE {used_kib} 100)'.encode()]
    assert c.getquota("other")[0] == "NO"
    typ, data = c.setquota('""', "(STORAGE 1000000)")
    assert typ == "NO" and b"[NOPERM]" in data[0]
    assert c.getquotaroot("Nowhere")[0] == "NO"
    for bad in ("x" * 5000, "&Jjo", "a..b"):  # no folder can have these names: NONEXISTENT, not a server bug
        typ, data = c.getquotaroot(bad)
        assert typ == "NO" and "[NONEXISTENT]" in str(data), data
    c.logout()


def test_append_and_copy_over_quota_are_refused_and_store_nothing(served):
    port, accounts, store = served
    root = store.account_root(USER)
    used = store.usage(root, exact=True).octets
    accounts.set_quota(USER, used + crlf_size(MSG) + 10)  # room for one more message, not two
    c = login(port)
    assert c.append("INBOX", None, None, MSG)[0] == "OK"
    typ, data = c.append("INBOX", None, None, MSG)
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    c.select("INBOX")
    typ, data = c.copy("1", "Archive")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    assert c.status("Archive", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 0)")
    typ, _ = c._simple_command("MOVE", "1", "Archive")  # RFC 6851: a move adds nothing to the account
    assert typ == "OK"
    assert store.usage(root, exact=True).messages == 3
    c.logout()
