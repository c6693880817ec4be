"""The door into the outbound path: builds the queue from the Config, and turns an accepted SMTP message into a
durable spool record (``relay``) — what ``App.relay_outbound`` calls for the submission role.

Before the record is written: the loop check (RFC 5321 §6.3), our ``Received:`` line (RFC 5321 §4.4) and, when the
mail-authentication part installed one, the DKIM signer's header (``signer(message) -> header bytes``) on top. The
250 comes only after the record's fsync (and its directory's).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from courrier import log
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.delivery import bounce
from courrier.delivery.loops import MAX_HOPS, count_received
from courrier.delivery.remote import RemoteDelivery, Smarthost
from courrier.delivery.replies import DELIVERED_TO_MAILBOX
from courrier.delivery.signing import Signer, sign_or_keep
from courrier.delivery.tlspolicy import TLSPolicy
from courrier.dns import Resolver
from courrier.mail import trace
from courrier.mail.envelope import Envelope, Hop, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from courrier.mailbox.api import MailStore
from courrier.queue.router import LocalTransport, Router
from courrier.queue.runner import Queue
from courrier.queue.schedule import Schedule
from courrier.queue.spool import Spool
from courrier.queue.store import SQLiteQueueStore
from courrier.quota import Quotas
from courrier.smtp import replies as R


def resolver_for(cfg: Config) -> Resolver:
    return Resolver([(ns.host, ns.port) for ns in cfg.delivery.nameservers])


def schedule_for(cfg: Config) -> Schedule:
    d = cfg.delivery
    return Schedule(retry_first=d.retry_first, retry_max=d.retry_max, max_lifetime=d.max_lifetime,
                    delay_notice=d.delay_notice)


def build_queue(cfg: Config, *, accounts: Accounts, store: MailStore, resolver: Resolver | None = None,
                signer: Callable[[], Signer | None] | None = None) -> Queue:
    """The queue with its transports. ``signer`` returns the current DKIM signer (for sendmail drops and DSNs)."""
    d = cfg.delivery
    smarthost = None
    if d.smarthost is not None:
        smarthost = Smarthost(d.smarthost.host, d.smarthost.port, d.smarthost_user, d.smarthost_password)
    resolver = resolver or resolver_for(cfg)
    tls_policy = TLSPolicy(resolver=resolver, db_path=cfg.db_path, mta_sts=d.mta_sts, dane=d.dane,
                           policy_port=d.mta_sts_port, ca_file=d.tls_ca_file)
    remote = RemoteDelivery(resolver=resolver, hostname=cfg.hostname, mx_port=d.mx_port,
                            smarthost=smarthost, concurrency_per_destination=d.concurrency_per_destination,
                            connect_timeout=d.connect_timeout, tls_policy=tls_policy)
    quotas = Quotas(accounts, store, cfg.accounts.default_quota)
    router = Router(is_local=cfg.is_local_domain, local=LocalTransport(hostname=cfg.hostname, accounts=accounts,
                                                                        store=store, quotas=quotas),
                    remote=remote, smarthost=smarthost is not None)
    poll = min(1.0, max(0.05, d.retry_first / 4))
    return Queue(spool=Spool(cfg.data_dir / "queue"), store=SQLiteQueueStore(cfg.db_path), transport=router,
                 schedule=schedule_for(cfg), hostname=cfg.hostname, poll_interval=poll, signer=signer)


def origin(hop: Hop | None) -> str:
    """Who handed the message over, for the queue's logs: "submission user@x", "smtp 192.0.2.1", "release"."""
    if hop is None:
        return ""
    who = hop.user or hop.client_ip
    return f"{hop.listener} {who}" if who else hop.listener


def queued_envelope(env: Envelope, hop: Hop | None, rcpts: list[Recipient]) -> Envelope:
    """``env`` as the queue keeps it: only ``rcpts`` (those it delivers), with who handed it over."""
    return dataclasses.replace(env, rcpts=list(rcpts), origin=origin(hop))


async def relay(queue: Queue, signer: Signer | None, env: Envelope, hop: Hop, msg: ReceivedMessage,
                rcpts: list[Recipient]) -> Reply:
    """Spools ``msg`` for ``rcpts`` (non-local recipients); 250 only once the record is on stable storage.

    This is the message's receipt: ``hop``'s Received: line goes on top (RFC 5321 §4.4); delivery out of the queue
    adds none."""
    if not rcpts:
        return R.QUEUED.with_text(f"OK queued as {env.queue_id}")
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(queue.disk, msg.read_all)
    if count_received(body) > MAX_HOPS:
        return R.LOOP_DETECTED
    first = str(rcpts[0].address) if len(rcpts) == 1 else None
    received = trace.received(hop, env, first).replace("\n", "\r\n").encode("utf-8")
    full = await loop.run_in_executor(queue.disk, sign_or_keep, signer, received + body, env.queue_id)
    try:
        await queue.enqueue(queued_envelope(env, hop, rcpts), [full])
    except OSError as e:
        log.event("queue.spool_failed", level="error", qid=env.queue_id, error=str(e))
        return R.storage_failure(e)
    return R.QUEUED.with_text(f"OK queued as {env.queue_id}")


async def report_delivered(queue: Queue, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                           delivered: list[Recipient]) -> None:
    """RFC 3461 §5.2.3: a "delivered" DSN (Status 2.0.0) to the sender for the local recipients that asked
    NOTIFY=SUCCESS — the ``on_delivered`` hook of the MX and submission roles' local delivery.

    Queued like any DSN (from ``<>``, DKIM-signed, delivered or relayed by the queue within its next pass); never
    for a message from ``<>``. The original comes back as its header unless RET=FULL (RFC 3461 §4.3)."""
    sender = str(env.mail_from)
    wanted = [r for r in delivered if any(n.upper() == "SUCCESS" for n in r.notify)]
    if not wanted or not sender:
        return
    full = (env.ret or "").upper() == "FULL"
    loop = asyncio.get_running_loop()
    original = await loop.run_in_executor(queue.disk, _original, msg, full)
    about = queued_envelope(env, hop, wanted)
    entries = bounce.success_entries(about.rcpts, "delivered", str(DELIVERED_TO_MAILBOX))
    await queue.send_dsn(about, original, entries)


async def report_refused(queue: Queue, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                         refused: list[Recipient], reply: Reply) -> None:
    """A failure DSN (RFC 3464, Status from ``reply``: 5.2.2 for a full mailbox) for recipients the MX or submission
    role accepted the message for but could not store it for (roles/quota.py); those that asked NOTIFY=NEVER or
    named other kinds get none (RFC 3461 §4.1)."""
    wanted = [r for r in refused if bounce.wants(r, "FAILURE")]
    if not wanted or env.mail_from.is_null:
        return
    full = (env.ret or "").upper() != "HDRS"  # RFC 3461 §4.3: failures return the whole message unless HDRS
    loop = asyncio.get_running_loop()
    original = await loop.run_in_executor(queue.disk, _original, msg, full)
    about = queued_envelope(env, hop, wanted)
    entries = [bounce.DSNEntry(r, "failed", reply.status, str(reply)) for r in about.rcpts]
    await queue.send_dsn(about, original, entries)


def _original(msg: ReceivedMessage, full: bool, head_limit: int = 1 << 20) -> bytes:
    """The message as received (CRLF), or its header section only (read no further than ``head_limit``)."""
    if full:
        return msg.read_all()
    msg.file.seek(0)
    head = msg.file.read(head_limit)
    end = head.find(b"\r\n\r\n")
    return head if end < 0 else head[:end + 4]
