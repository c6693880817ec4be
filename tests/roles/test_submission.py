"""The submission policy over the real SMTP engine, in-process on a loopback port, driven by aiosmtplib.

Whole-program runs with smtplib, swaks, curl and openssl are in tests/e2e/test_30..39; these tests reach what the
program cannot show from outside: the outbound relay hand-off (a recording relay stands in for the outbound queue,
which has its own tests) and exact envelopes.
"""

from __future__ import annotations

import asyncio
import mailbox
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib
import pytest

from courrier import tlsutil
from courrier.accounts import Accounts
from courrier.config import LimitsConfig
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mailbox.store import MaildirStore
from courrier.roles.submission import SubmissionPolicy
from courrier.smtp import replies as R
from courrier.smtp.protocol import ConnectionLimiter, SMTPServer
from courrier.smtp.replies import Reply
from courrier.smtp.session import Session

HOST = "mx.example.test"


@dataclass
class RecordingRelay:
    """Stands in for App.relay_outbound: records what the MSA hands to the outbound queue."""

    reply: Reply = R.QUEUED
    calls: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def __call__(self, session: Session, env: Envelope, msg: ReceivedMessage, rcpts: list[Recipient]) -> Reply:
        self.calls.append((str(env.mail_from), [str(r.address) for r in rcpts], msg.read_all()))
        return self.reply


@dataclass
class MSA:
    port: int
    tmp: Path
    accounts: Accounts
    store: MaildirStore

    def inbox(self, account: str, folder: str | None = None) -> list[mailbox.MaildirMessage]:
        path = self.store.folder_for(account, folder)
        return list(mailbox.Maildir(path, create=False)) if path.exists() else []

    def client(self, **kw) -> aiosmtplib.SMTP:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        return aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, tls_context=ctx, start_tls=False,
                               local_hostname="client.test", timeout=10, **kw)

    async def connect(self, **kw) -> aiosmtplib.SMTP:
        c = self.client(**kw)
        await c.connect()
        await c.ehlo()
        return c


@pytest.fixture
async def make_msa(tmp_path):
    servers = []
    stores = []

    async def make(*, relay=None, sent_copy=False, trust_loopback=False, limit=10) -> MSA:
        accounts = Accounts(tmp_path / "courrier.db")
        if accounts.get("bob@example.test") is None:
            accounts.add("bob@example.test", "secret")
            accounts.add_alias("bob@example.test", "robert@example.test")
            accounts.add("alice@example.test", "alicepw")
            accounts.add("app@example.test", "apppw", send_as_any=True)
        store = MaildirStore(tmp_path)
        stores.append(store)
        policy = SubmissionPolicy(hostname=HOST, domains=("example.test",), accounts=accounts, store=store,
                                  relay=relay, sent_copy=sent_copy)
        cert, key = tlsutil.ensure_self_signed(tmp_path / "tls", HOST)
        limits = LimitsConfig(auth_failures_per_ip=limit)  # the engine's failed-login limiter (courrier/auth)
        smtp = SMTPServer(listener="submission", hostname=HOST, policy=policy, limits=limits,
                          limiter=ConnectionLimiter(limits), tls_context=tlsutil.server_context(cert, key),
                          trust_loopback=trust_loopback)
        srv = await asyncio.get_running_loop().create_server(smtp, "127.0.0.1", 0)
        servers.append((srv, smtp))
        return MSA(srv.sockets[0].getsockname()[1], tmp_path, accounts, store)

    yield make
    for srv, smtp in servers:
        srv.close()
        await smtp.shutdown(grace=1)
    for s in stores:
        s.close()


async def login(msa: MSA, user="bob@example.test", password="secret", **kw) -> aiosmtplib.SMTP:
    c = await msa.connect(**kw)
    await c.starttls()
    await c.login(user, password)
    return c


MSG = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


async def test_auth_is_offered_only_after_starttls(make_msa):
    msa = await make_msa()
    c = await msa.connect()
    assert "auth" not in c.esmtp_extensions and "starttls" in c.esmtp_extensions
    resp = await c.execute_command(b"AUTH", b"PLAIN", b"AGJvYgBzZWNyZXQ=")
    assert (resp.code, resp.message[:6]) == (538, "5.7.11")
    resp = await c.execute_command(b"MAIL", b"FROM:<bob@example.test>")
    assert (resp.code, resp.message[:5]) == (530, "5.7.0")
    await c.starttls()
    await c.ehlo()
    assert c.server_auth_methods == ["plain", "login"]
    await c.quit()


async def test_trusted_loopback_may_auth_without_tls(make_msa):
    msa = await make_msa(trust_loopback=True)
    c = await msa.connect()
    assert c.server_auth_methods == ["plain", "login"]
    await c.login("bob@example.test", "secret")
    await c.sendmail("bob@example.test", ["alice@example.test"], MSG)
    await c.quit()
    assert len(msa.inbox("alice@example.test")) == 1


async def test_wrong_password_is_535_5_7_8(make_msa):
    msa = await make_msa()
    c = await msa.connect()
    await c.starttls()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
        await c.login("bob@example.test", "wrong")
    assert e.value.code == 535 and e.value.message.startswith("5.7.8")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await c.login("nobody@example.test", "secret")
    await c.login("bob@example.test", "secret")  # the session is still usable
    await c.quit()


async def test_throttle_per_ip_then_454_even_with_the_right_password(make_msa):
    msa = await make_msa(limit=3)
    c = await msa.connect()
    await c.starttls()
    await c.ehlo()
    for _ in range(3):
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
            await c.auth_plain("alice@example.test", "guess")
        assert e.value.code == 535
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
        await c.auth_plain("bob@example.test", "secret")
    assert e.value.code == 454 and e.value.message.startswith("4.7.0")
    # another client address (127.0.0.2 is loopback too) is not punished for this one's guesses
    other = await msa.connect(source_address=("127.0.0.2", 0))
    await other.starttls()
    await other.login("bob@example.test", "secret")
    await other.quit()


async def test_throttle_per_account_across_addresses(make_msa):
    msa = await make_msa(limit=3)
    for i in range(3):
        c = await msa.connect(source_address=(f"127.0.0.{10 + i}", 0))
        await c.starttls()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await c.login("bob@example.test", "guess")
        await c.quit()
    c = await msa.connect(source_address=("127.0.0.20", 0))
    await c.starttls()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as e:
        await c.login("bob@example.test", "secret")
    assert e.value.code == 454
    await c.login("alice@example.test", "alicepw")  # other accounts from that address are fine
    await c.quit()


async def test_forged_envelope_sender_is_553_5_7_1(make_msa):
    msa = await make_msa()
    c = await login(msa)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as e:
        await c.sendmail("alice@example.test", ["alice@example.test"], MSG)
    assert e.value.code == 553 and e.value.message.startswith("5.7.1")
    await c.quit()


@pytest.mark.parametrize("header", [
    b"From: Alice <alice@example.test>\r\n",
    b"From: bob@example.test, alice@example.test\r\n",
    b"From: bob@example.test\r\nSender: alice@example.test\r\n",
])
async def test_forged_header_from_is_553_5_7_1(make_msa, header):
    msa = await make_msa()
    c = await login(msa)
    with pytest.raises(aiosmtplib.SMTPDataError) as e:
        await c.sendmail("bob@example.test", ["alice@example.test"], header + b"Subject: x\r\n\r\nx\r\n")
    assert e.value.code == 553 and e.value.message.startswith("5.7.1")
    await c.quit()
    assert msa.inbox("alice@example.test") == []


async def test_alias_subaddress_and_null_sender_are_allowed(make_msa):
    msa = await make_msa()
    c = await login(msa, user="Bob@Example.TEST")
    await c.sendmail("robert@example.test", ["alice@example.test"], b"From: robert@example.test\r\n\r\nx\r\n")
    await c.sendmail("bob+news@example.test", ["alice@example.test"], b"From: bob+news@example.test\r\n\r\nx\r\n")
    await c.sendmail("", ["alice@example.test"], b"From: bob@example.test\r\n\r\nauto-reply\r\n")  # MAIL FROM:<>
    await c.quit()
    assert len(msa.inbox("alice@example.test")) == 3


async def test_send_as_any_account_may_use_any_sender(make_msa):
    msa = await make_msa()
    c = await login(msa, user="app@example.test", password="apppw")
    await c.sendmail("alerts@elsewhere.test", ["alice@example.test"],
                     b"From: Monitoring <alerts@elsewhere.test>\r\n\r\ndisk full\r\n")
    await c.quit()
    [m] = msa.inbox("alice@example.test")
    assert m["Return-Path"] == "<alerts@elsewhere.test>"
    assert "(authenticated sender: app@example.test)" in m["Received"]


async def test_message_id_and_date_added_only_when_missing(make_msa):
    msa = await make_msa()
    c = await login(msa)
    await c.sendmail("bob@example.test", ["alice@example.test"], MSG)
    await c.sendmail("bob@example.test", ["alice@example.test"],
                     b"From: bob@example.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                     b"Message-ID: <mine@client.test>\r\n\r\nx\r\n")
    await c.quit()
    msgs = sorted(msa.inbox("alice@example.test"), key=lambda m: m["Message-ID"])
    added = [m for m in msgs if m["Message-ID"] != "<mine@client.test>"][0]
    kept = [m for m in msgs if m["Message-ID"] == "<mine@client.test>"][0]
    assert added["Message-ID"].endswith(f"@{HOST}>") and added["Date"]
    assert added.get_all("Message-ID") and len(added.get_all("Message-ID")) == 1
    assert kept.get_all("Date") == ["Mon, 1 Jan 2024 00:00:00 +0000"]
    assert kept.get_all("Message-ID") == ["<mine@client.test>"]
    assert added.get_payload() == "hello\n"


@pytest.mark.parametrize("body", [b"Subject: no from\r\n\r\nx\r\n", b"From: bob\r\n\r\nx\r\n",
                                  b"From: bob@example.test\r\nFrom: bob@example.test\r\n\r\nx\r\n"])
async def test_missing_or_broken_from_is_550_5_6_0(make_msa, body):
    msa = await make_msa()
    c = await login(msa)
    with pytest.raises(aiosmtplib.SMTPDataError) as e:
        await c.sendmail("bob@example.test", ["alice@example.test"], body)
    assert e.value.code == 550 and e.value.message.startswith("5.6.0") and "From" in e.value.message
    await c.quit()


async def test_unknown_local_recipient_is_550_5_1_1(make_msa):
    msa = await make_msa()
    c = await login(msa)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as e:
        await c.sendmail("bob@example.test", ["ghost@example.test"], MSG)
    assert e.value.recipients[0].code == 550
    await c.quit()


async def test_remote_recipient_without_outbound_queue_is_451_4_3_2(make_msa):
    msa = await make_msa(relay=None)
    c = await login(msa)
    errors, _ = await c.sendmail("bob@example.test", ["alice@example.test", "carol@remote.test"], MSG)
    assert errors["carol@remote.test"][0] == 451 and errors["carol@remote.test"][1].startswith("4.3.2")
    await c.quit()
    assert len(msa.inbox("alice@example.test")) == 1  # the local recipient is not held hostage


async def test_remote_recipients_go_to_the_relay_with_the_completed_message(make_msa):
    relay = RecordingRelay()
    msa = await make_msa(relay=relay)
    c = await login(msa)
    await c.sendmail("bob@example.test", ["carol@remote.test", "alice@example.test", "dan@[192.0.2.1]"],
                     b"From: bob@example.test\r\n\r\nhi\r\n")
    await c.quit()
    [(sender, rcpts, data)] = relay.calls
    assert sender == "bob@example.test"
    assert rcpts == ["carol@remote.test", "dan@[192.0.2.1]"]
    assert data.startswith(b"Date: ") and b"\r\nMessage-ID: <" in data and data.endswith(b"\r\n\r\nhi\r\n")
    [m] = msa.inbox("alice@example.test")
    assert f"Message-ID: {m['Message-ID']}".encode() in data  # the same message went both ways


async def test_relay_refusal_is_passed_on_and_nothing_is_delivered(make_msa):
    relay = RecordingRelay(reply=R.INSUFFICIENT_STORAGE)
    msa = await make_msa(relay=relay)
    c = await login(msa)
    with pytest.raises(aiosmtplib.SMTPDataError) as e:
        await c.sendmail("bob@example.test", ["carol@remote.test", "alice@example.test"], MSG)
    assert e.value.code == 452
    await c.quit()
    assert msa.inbox("alice@example.test") == []  # a retry will not duplicate the local copy


async def test_sent_copy(make_msa):
    msa = await make_msa(sent_copy=True)
    c = await login(msa)
    await c.sendmail("bob@example.test", ["alice@example.test"], MSG)
    await c.quit()
    [sent] = msa.inbox("bob@example.test", "Sent")
    [received] = msa.inbox("alice@example.test")
    assert sent["Message-ID"] == received["Message-ID"]
    assert sent["Return-Path"] is None and sent["Subject"] == "hi"
    assert msa.inbox("bob@example.test") == []


async def test_no_sent_copy_by_default(make_msa):
    msa = await make_msa()
    c = await login(msa)
    await c.sendmail("bob@example.test", ["alice@example.test"], MSG)
    await c.quit()
    assert msa.inbox("bob@example.test", "Sent") == []
