"""The MX role: mail for our domains from anyone, mail for anywhere else from no one (never an open relay).

A policy over the SMTP engine (``courrier.smtp``), above delivery: the engine knows nothing of accounts or mailboxes.

RFC 5321 §2.3.5/§3.6: we accept responsibility only for domains in ``domains``. Every relay trick that hides another
domain in a local part (``user%other@local``, ``"user@other"@local``, ``other!user@local``) stays a local part here —
looked up as such and refused as an unknown user; a source route (``@local:user@other``) is dropped by the parser,
which leaves a foreign domain and a 554; IP literals are never ours.

Filters (``courrier.filter``, ``[filter]``): the client check starts at connect and is answered before each
recipient is accepted (a DNSBL listing: 554 5.7.1 — at RCPT rather than in the greeting, which RFC 5321 §3.1 would
have wait for QUIT anyway); the message is checked at the end of DATA after the authentication checks (spamd:
X-Spam-* fields, Junk, or 550 5.7.1 before the 250, so nothing is accepted that is refused).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from courrier.accounts import Accounts
from courrier.delivery import loops
from courrier.delivery.local import DeliveredHook, deliver_local
from courrier.delivery.loops import MAX_HOPS
from courrier.delivery.sieve import SieveFilter, SieveRejected
from courrier.filter.chain import FilterChain
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from courrier.mailbox.api import MailStore
from courrier.quota import Quotas
from courrier.roles import quota
from courrier.smtp import replies as R
from courrier.smtp.policy import Policy
from courrier.smtp.session import Session


@dataclass
class InboundVerdict:
    """What the mail-authentication step decided about a message (see courrier.mailauth)."""

    headers: bytes = b""  # e.g. Authentication-Results:, LF-terminated, prepended to each copy
    reject: Reply | None = None  # e.g. 550 5.7.1 under DMARC p=reject
    folder: str | None = None  # e.g. "Junk" under p=quarantine
    drop_fields: tuple[int, ...] = ()  # header fields (0-based) to leave out: forged Authentication-Results (RFC 8601 §5)


# (session, envelope, message) → verdict; installed by the app when [auth] checks = true
InboundCheck = Callable[[Session, Envelope, ReceivedMessage], Awaitable[InboundVerdict]]


def count_received(msg: ReceivedMessage, limit: int = 256 * 1024) -> int:
    """Number of Received: header fields in the header section (read at most ``limit`` octets)."""
    msg.file.seek(0)
    return loops.count_received(msg.file.read(limit))


def accept_local(accounts: Accounts, rcpt: Recipient) -> Reply:
    """RCPT for a local domain: 250 with the mailbox (and user+tag) recorded on ``rcpt``, or 550 5.1.1."""
    mailbox = accounts.local_mailbox(rcpt.address)
    if mailbox is None:
        return R.NO_SUCH_USER
    rcpt.mailbox = mailbox
    rcpt.tag = rcpt.address.tag
    return R.RECIPIENT_OK


class MXPolicy(Policy):
    name = "mx"

    def __init__(self, *, domains: tuple[str, ...], accounts: Accounts, store: MailStore,
                 inbound_check: InboundCheck | None = None, on_delivered: DeliveredHook | None = None,
                 filters: FilterChain | None = None, quotas: Quotas | None = None,
                 on_refused: quota.Refused | None = None) -> None:
        self.domains = domains
        self.filters = filters
        self.accounts = accounts
        self.store = store
        self.inbound_check = inbound_check
        self.on_delivered = on_delivered  # success DSNs (RFC 3461 §5.2.3), installed by the app
        self.quotas = quotas  # 552 5.2.2 at RCPT and end of DATA (roles/quota.py)
        self.on_refused = on_refused  # failure DSNs for recipients over quota after the 250
        self.sieve: SieveFilter | None = None  # the accounts' Sieve scripts (installed by the app)

    async def check_connect(self, session: Session) -> Reply | None:
        if self.filters is not None:
            self.filters.start_client_check(session.hop())
        return None

    async def check_rcpt(self, session: Session, env: Envelope, rcpt: Recipient) -> Reply:
        a = rcpt.address
        if a.is_domain_literal or a.domain.lower() not in self.domains:
            return R.RELAY_DENIED
        if self.filters is not None and (client := await self.filters.check_client(session.hop())).reply:
            return client.reply
        reply = accept_local(self.accounts, rcpt)
        return (await quota.check_rcpt(self.quotas, env, rcpt) or reply) if reply.ok else reply

    async def deliver(self, session: Session, env: Envelope, msg: ReceivedMessage) -> Reply:
        if count_received(msg) > MAX_HOPS:
            return R.LOOP_DETECTED
        verdict = InboundVerdict()
        if self.inbound_check is not None:
            verdict = await self.inbound_check(session, env, msg)
            if verdict.reject is not None:
                return verdict.reject
        if self.filters is not None:
            found = await self.filters.check(env, session.hop(), msg)
            if found.reply is not None:
                return found.reply
            verdict = InboundVerdict(verdict.headers + found.header_block(), None, verdict.folder or found.folder,
                                     verdict.drop_fields + found.drop_fields)
        mailboxes: dict[str, str] = {}
        for r in env.rcpts:
            if r.mailbox and r.mailbox not in mailboxes:
                mailboxes[r.mailbox] = str(r.address)
        full = await quota.over_quota(self.quotas, mailboxes, msg.size)
        refused = [r for r in env.rcpts if r.mailbox in full]
        if full and len(full) == len(mailboxes):
            return quota.refused_reply(refused)
        for account in full:
            del mailboxes[account]
        folders = dict.fromkeys(mailboxes, verdict.folder) if verdict.folder else None
        try:
            await deliver_local(self.store, env, session.hop(), msg, mailboxes, verdict.headers, folders,
                                drop_fields=verdict.drop_fields, on_delivered=self.on_delivered, sieve=self.sieve,
                                may_refuse=not refused)
        except SieveRejected as e:  # RFC 5429 §2.1.1: every recipient's script rejected it
            return e.reply
        if refused and self.on_refused is not None:
            await self.on_refused(env, session.hop(), msg, refused, quota.refused_reply(refused))
        return R.QUEUED.with_text(f"OK queued as {env.queue_id}")
