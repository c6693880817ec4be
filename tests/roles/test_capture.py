"""CapturePolicy over the real SMTP engine, in-process on a loopback port, driven by aiosmtplib: the pause switch
(set by the web layer), events arriving on the event loop's thread, and AUTH against accounts when
``accept_any_auth = false``. Whole-program behaviour is in tests/e2e/test_10..13."""

from __future__ import annotations

import asyncio
import threading

import aiosmtplib
import pytest

from courrier.accounts import Accounts
from courrier.capture.store import CaptureStore
from courrier.config import CaptureConfig, LimitsConfig
from courrier.roles.capture import CapturePolicy, failure_for
from courrier.smtp.protocol import ConnectionLimiter, SMTPServer

MSG = "From: a@x.test\r\nTo: b@y.test\r\nSubject: s\r\n\r\nbody\r\n"


@pytest.fixture
async def capture(tmp_path):
    made = []

    async def make(**cfg):
        c = CaptureConfig(**cfg)
        store = CaptureStore(tmp_path, c, db_path=tmp_path / "courrier.db")
        await store.start()
        accounts = Accounts(tmp_path / "courrier.db")
        policy = CapturePolicy(store=store, cfg=c, accounts=accounts)
        smtp = SMTPServer(listener="smtp", hostname="mx.test", policy=policy, limits=LimitsConfig(),
                          limiter=ConnectionLimiter(LimitsConfig()), trust_loopback=True)
        server = await asyncio.get_running_loop().create_server(smtp, "127.0.0.1", 0)
        made.append((server, smtp, store))
        return store, accounts, server.sockets[0].getsockname()[1]

    yield make
    for server, smtp, store in made:
        server.close()
        await smtp.shutdown(grace=1)
        await store.aclose()


def client(port: int) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="app.test", timeout=10)


def test_failure_for():
    assert [failure_for(x) for x in ("tempfail", "PermFail-1", "timeout9", "disconnect", "ok", "xtempfail")] == [
        "tempfail", "permfail", "timeout", "disconnect", None, None]


async def test_pause_incoming(capture):
    store, _, port = await capture()
    store.set_paused(True)
    c = client(port)
    await c.connect()
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
        await c.sendmail("a@x.test", ["b@y.test"], MSG)
    assert (e.value.code, e.value.message[:5]) == (451, "4.3.2")
    store.set_paused(False)
    await c.sendmail("a@x.test", ["b@y.test"], MSG)
    await c.quit()
    assert store.counts() == (1, 1)


async def test_events_arrive_on_the_loop_thread(capture):
    store, _, port = await capture()
    seen: list[tuple[str, int]] = []
    got = asyncio.Event()

    def cb(event):
        seen.append((event["Type"], threading.get_ident()))
        if event["Type"] == "stats":
            got.set()

    store.events.subscribe(cb)
    c = client(port)
    await c.connect()
    errors, reply = await c.sendmail("a@x.test", ["b+t@y.test"], MSG)
    await c.quit()
    await asyncio.wait_for(got.wait(), 5)
    assert [t for t, _ in seen] == ["new", "stats"]
    assert {tid for _, tid in seen} == {threading.get_ident()}
    [m] = store.list().messages
    assert reply == f"2.0.0 OK queued as {m.id}" and m.tags == ["t"]


async def test_auth_against_accounts_when_not_any(capture):
    store, accounts, port = await capture(accept_any_auth=False)
    accounts.add("dev@example.test", "right")
    c = client(port)
    await c.connect()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await c.login("dev@example.test", "wrong")
    await c.login("dev@example.test", "right")
    await c.sendmail("a@x.test", ["b@y.test"], MSG)
    await c.quit()
    assert store.list().messages[0].username == "dev@example.test"
