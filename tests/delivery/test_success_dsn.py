"""Success DSNs (RFC 3461 §5.2.2, §5.2.3) from the DSN builder and from the queue's local route, with the real spool,
SQLite and Maildir: a queued message for a local recipient that asked NOTIFY=SUCCESS gives its sender a "delivered"
report; "relayed" reports say so; nothing for the null sender."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time

from courrier.accounts import Accounts
from courrier.delivery import bounce
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import NULL, parse_address
from courrier.mailbox.store import MaildirStore
from courrier.queue.router import LocalTransport, Router
from courrier.queue.runner import Queue
from courrier.queue.schedule import Schedule
from courrier.queue.spool import Spool
from courrier.queue.store import SQLiteQueueStore

ORIGINAL = b"From: alice@a.test\r\nTo: bob@a.test\r\nSubject: numbers\r\n\r\nthe body\r\n"


def test_success_entries_only_for_recipients_that_asked():
    rcpts = [Recipient(parse_address("a@x.test"), notify=("SUCCESS",)), Recipient(parse_address("b@x.test")),
             Recipient(parse_address("c@x.test"), notify=("NEVER",))]
    assert [str(e.rcpt.address) for e in bounce.success_entries(rcpts)] == ["a@x.test"]
    assert bounce.success_entries(rcpts)[0].status == "2.0.0"


def test_relayed_report_says_relayed():
    env = Envelope(queue_id="Q1", mail_from=parse_address("alice@a.test"), rcpts=[], received_at=time.time())
    entries = bounce.success_entries([Recipient(parse_address("far@b.test"), notify=("SUCCESS",))], "relayed", "250 2.0.0 Ok",
                                     "mx.b.test")
    m = email.message_from_bytes(bounce.build_dsn(hostname="mx.a.test", env=env, message=ORIGINAL, entries=entries),
                                 policy=email.policy.default)
    human, status, returned = m.iter_parts()
    assert m["Subject"] == "Relayed Mail Delivery Report" and "do not report delivery status" in human.get_content()
    assert "Action: relayed" in status.as_string() and "Remote-MTA: dns; mx.b.test" in status.as_string()
    assert returned.get_content_type() == "text/rfc822-headers" and b"the body" not in returned.as_bytes()


class _NoRemote:
    async def deliver(self, *a: object) -> dict:
        raise AssertionError("nothing here is remote")

    async def close(self) -> None:
        pass


async def _run_queue(tmp_path, sender: str) -> MaildirStore:
    accounts = Accounts(tmp_path / "courrier.db")
    for u in ("alice@a.test", "bob@a.test"):
        accounts.add(u, "secret")
    store = MaildirStore(tmp_path)
    router = Router(is_local=lambda d: d == "a.test", local=LocalTransport(hostname="mx.a.test", accounts=accounts,
                                                                           store=store), remote=_NoRemote())
    q = Queue(spool=Spool(tmp_path / "queue"), store=SQLiteQueueStore(tmp_path / "courrier.db"), transport=router,
              schedule=Schedule(), hostname="mx.a.test", poll_interval=0.05)
    env = Envelope(queue_id="LOCAL1", mail_from=parse_address(sender) if sender else NULL,
                   rcpts=[Recipient(parse_address("bob@a.test"), notify=("SUCCESS",))],
                   received_at=time.time(), envid="queue-48", origin="sendmail")
    await q.start()
    try:
        await q.enqueue(env, [ORIGINAL])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not await asyncio.to_thread(q.store.qids):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        await q.stop()
    return store


def _messages(store: MaildirStore, account: str) -> list[email.message.EmailMessage]:
    new = store.account_root(account) / "new"
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(new.iterdir())] \
        if new.exists() else []


async def test_queue_local_route_sends_a_delivered_dsn(tmp_path):
    store = await _run_queue(tmp_path, "alice@a.test")
    assert [str(m["Subject"]) for m in _messages(store, "bob@a.test")] == ["numbers"]
    [dsn] = _messages(store, "alice@a.test")
    assert dsn.get_content_type() == "multipart/report" and dsn["Return-Path"] == "<>"
    status = list(dsn.iter_parts())[1].as_string()
    assert "Action: delivered" in status and "Status: 2.0.0" in status and "Original-Envelope-Id: queue-48" in status
    assert "Final-Recipient: rfc822; bob@a.test" in status and "Remote-MTA" not in status


async def test_queue_never_reports_to_the_null_sender(tmp_path):
    store = await _run_queue(tmp_path, "")
    assert [str(m["Subject"]) for m in _messages(store, "bob@a.test")] == ["numbers"]
    assert _messages(store, "alice@a.test") == []
