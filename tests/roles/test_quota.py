"""The SMTP roles' quota rule (roles/quota.py) over the real engine with aiosmtplib: the submission role's local
recipients (the MX role has the same rule, run end to end in tests/e2e/test_84_quota.py), and the queue's local
route answering a permanent 5.2.2."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from courrier.accounts import Accounts
from courrier.config import LimitsConfig
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import parse_address
from courrier.mailbox.store import MaildirStore
from courrier.queue.router import LocalTransport
from courrier.quota import Quotas
from courrier.roles.submission import SubmissionPolicy
from courrier.smtp.protocol import ConnectionLimiter, SMTPServer
from tests.roles.test_submission import RecordingRelay

MSG = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: q\r\n\r\n" + b"x" * 500 + b"\r\n"


@pytest.fixture
async def msa(tmp_path):
    accounts = Accounts(tmp_path / "courrier.db")
    accounts.add("bob@example.test", "secret")
    accounts.add("alice@example.test", "pw")
    store = MaildirStore(tmp_path)
    refused: list[tuple[list[str], str]] = []
    relay = RecordingRelay()

    async def on_refused(env, hop, msg, rcpts, reply) -> None:  # noqa: ANN001
        refused.append(([str(r.address) for r in rcpts], str(reply)))

    policy = SubmissionPolicy(hostname="mx.test", domains=("example.test",), accounts=accounts, store=store,
                              relay=relay, quotas=Quotas(accounts, store), on_refused=on_refused)
    limits = LimitsConfig()
    smtp = SMTPServer(listener="submission", hostname="mx.test", policy=policy, limits=limits,
                      limiter=ConnectionLimiter(limits), tls_context=None, trust_loopback=True)
    srv = await asyncio.get_running_loop().create_server(smtp, "127.0.0.1", 0)
    yield srv.sockets[0].getsockname()[1], accounts, store, refused, relay
    srv.close()
    await smtp.shutdown(grace=1)
    store.close()


async def session(port: int) -> aiosmtplib.SMTP:
    c = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="client.test", timeout=10)
    await c.connect()
    await c.login("bob@example.test", "secret")
    return c


async def transaction(c: aiosmtplib.SMTP, rcpts: list[str], size: int | None = None) -> list[tuple[int, str]]:
    """MAIL (SIZE= only when given), each RCPT, DATA: the replies."""
    out = []
    params = [f"SIZE={size}"] if size else []
    out.append(tuple(await c.mail("bob@example.test", options=params)))
    for r in rcpts:
        try:
            out.append(tuple(await c.rcpt(r)))
        except aiosmtplib.SMTPRecipientRefused as e:
            out.append((e.code, e.message))
    try:
        out.append(tuple(await c.data(MSG)))
    except aiosmtplib.SMTPResponseException as e:
        out.append((e.code, e.message))
    return out


async def test_data_refused_when_every_local_recipient_is_over(msa):
    port, accounts, store, refused, relay = msa
    accounts.set_quota("alice@example.test", 300)
    c = await session(port)
    replies = await transaction(c, ["alice@example.test"])
    assert replies[-1][0] == 552 and replies[-1][1].startswith("5.2.2")
    assert store.usage(store.account_root("alice@example.test"), exact=True).messages == 0 and not refused
    # with a remote recipient the message goes on: 250, relayed, and alice reported (a failure DSN)
    await c.rset()
    replies = await transaction(c, ["alice@example.test", "carol@else.test"])
    assert replies[-1][0] == 250
    assert relay.calls[-1][1] == ["carol@else.test"]
    assert refused == [(["alice@example.test"], "552 5.2.2 Mailbox full: alice@example.test over storage quota")]
    await c.quit()


async def test_rcpt_refused_when_full_or_by_size(msa):
    port, accounts, store, refused, relay = msa
    root = store.account_root("alice@example.test")
    store.index.append(root, MSG)
    used = store.usage(root).octets
    accounts.set_quota("alice@example.test", used + 100)
    c = await session(port)
    replies = await transaction(c, ["alice@example.test", "carol@else.test"], size=len(MSG))
    assert replies[1][0] == 552 and replies[1][1].startswith("5.2.2")  # RCPT: SIZE= does not fit
    assert replies[2][0] == 250 and replies[-1][0] == 250
    await c.rset()
    accounts.set_quota("alice@example.test", used)
    replies = await transaction(c, ["alice@example.test", "carol@else.test"])  # no SIZE=: full already
    assert replies[1][0] == 552
    await c.quit()


async def test_the_queue_local_route_fails_permanently_with_5_2_2(tmp_path):
    accounts = Accounts(tmp_path / "courrier.db")
    accounts.add("alice@example.test", "pw")
    accounts.set_quota("alice@example.test", 10)
    store = MaildirStore(tmp_path)
    try:
        local = LocalTransport(hostname="mx.test", accounts=accounts, store=store, quotas=Quotas(accounts, store))
        env = Envelope(queue_id="q1", mail_from=parse_address("x@else.test"),
                       rcpts=[Recipient(parse_address("alice@example.test"))])
        seen = []
        results = await local.deliver(env, MSG, [(0, env.rcpts[0])], lambda rcpts, o: seen.append(o))
        o = results[0]
        assert o.permanent and o.code == 552 and o.status == "5.2.2" and "alice@example.test" in o.text
        assert store.usage(store.account_root("alice@example.test"), exact=True).messages == 0
    finally:
        store.close()
