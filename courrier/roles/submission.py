"""The submission role (MSA, RFC 6409): who the user is, whether they may use that sender, and a well-formed message.

The same SMTP engine as the MX role; this policy decides:

- AUTH (RFC 4954) with PLAIN and LOGIN, offered only once the session is encrypted (STARTTLS, RFC 3207, or the
  implicit-TLS port, RFC 8314) — or to a trusted loopback client (``trust_loopback``). Before that AUTH answers
  538 5.7.11 (RFC 4954 §6) and MAIL answers 530 5.7.0 (RFC 4954 §6, RFC 6409 §4.3: the MSA needs an identity).
- Password checks (argon2) run in a thread, never on the event loop (``courrier.auth.check_password``); the engine
  runs them under the shared failed-login limiter (courrier/auth), which answers 454 4.7.0 while a client is locked.
- Identity (RFC 6409 §6.1 "the MSA MAY … verify the sender"): the envelope sender and every address of every header
  ``From:`` and ``Sender:`` field — as the program's one header reader (``courrier.mail.headers``) finds them, the
  obsolete ``From :`` form included (RFC 5322 §4.5) — must be the account's address, one of its aliases, or a
  ``+tag`` subaddress of either; else 553 5.7.1. Accounts with ``send_as_any`` are exempt (trusted relays,
  applications).
- Hygiene (RFC 6409 §8.1-§8.3): a header section with a line that is no header field, a lone CR or non-UTF-8 octets
  is refused with 550 5.6.0, and so is a message without exactly one syntactically valid ``From:`` (RFC 5322 §3.6,
  §3.6.2); ``Date:`` and ``Message-ID:`` are added when missing.
- Delivery: recipients in local domains go to their Maildir; others to the outbound relay callable when the app has
  one, and are refused with 451 4.3.2 at RCPT while it has none. ``[submission] sent_copy`` files a copy in the
  sender's ``Sent`` folder.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from email import errors as email_errors
from email.headerregistry import AddressHeader, HeaderRegistry

from courrier import log
from courrier.accounts import Account, AccountError, Accounts, normalize
from courrier.auth import check_password
from courrier.delivery.local import DeliveredHook, deliver_local
from courrier.delivery.loops import MAX_HOPS
from courrier.delivery.sieve import SieveFilter, SieveRejected
from courrier.mail import addresses as mail_addresses
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.headers import Field, Header, read_header
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import Address, AddressError, parse_address
from courrier.mail.reply import Reply
from courrier.mailbox.api import MailStore
from courrier.quota import Quotas
from courrier.roles import quota
from courrier.roles.mx import accept_local, count_received
from courrier.smtp import replies as R
from courrier.smtp.policy import Policy
from courrier.smtp.reader import new_spool
from courrier.smtp.session import Session

# (session, envelope, message, recipients in other domains) → the reply of the outbound queue
Relay = Callable[[Session, Envelope, ReceivedMessage, list[Recipient]], Awaitable[Reply]]

MAX_HEADER_SECTION = 256 * 1024  # octets; a submitted message with a larger header section is refused
MECHANISMS = ["PLAIN", "LOGIN"]  # RFC 4616, draft-murchison-sasl-login
_REGISTRY = HeaderRegistry()  # email.headerregistry's strict RFC 5322 address parsing (the ``default`` policy's)
_LONE_CR = re.compile(rb"\r(?!\n)")


class HeaderProblem(Exception):
    """The header section breaks a rule the MSA enforces; carries the reply to give."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


def header_section(msg: ReceivedMessage, limit: int = MAX_HEADER_SECTION) -> bytes:
    """The header section (without the empty line that ends it) of a CRLF message; 550 5.6.0 past ``limit``."""
    msg.file.seek(0)
    head = msg.file.read(limit + 4)
    if head.startswith(b"\r\n"):
        return b""  # RFC 5322 §2.1: an empty line first means no header fields at all
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        return head[: end + 2]
    if msg.size > limit:
        raise HeaderProblem(R.BAD_MESSAGE.with_text(f"Header section larger than {limit} octets"))
    return head if head.endswith(b"\r\n") else head + b"\r\n"


def parse_headers(head: bytes) -> Header:
    """The header fields, read by the program's one header reader (``courrier.mail.headers``), so the fields checked
    here are the fields IMAP, the web and DMARC show: an obsolete ``From :`` is a From (RFC 5322 §4.5).

    Refused with 550 5.6.0 (RFC 6409 §8.1: the MSA may refuse a message that is not RFC 5322): a header section that
    is not UTF-8 (RFC 6532), a lone CR (RFC 5322 §2.3: CR only in CRLF; a lone CR is a line break to some readers and
    not to others), and any line that is no header field."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        raise HeaderProblem(R.BAD_MESSAGE.with_text("Header section is not valid UTF-8")) from None
    if _LONE_CR.search(head):
        raise HeaderProblem(R.BAD_MESSAGE.with_text("Header section has a CR without LF (RFC 5322 section 2.3)"))
    header = read_header(head + b"\r\n", max_size=MAX_HEADER_SECTION + 4)
    if header.problems:
        raise HeaderProblem(R.BAD_MESSAGE.with_text(
            f"Header section refused at {header.problems[0].describe()} (RFC 5322 section 2.2)"))
    return header


def _addresses_seen(fields: list[Field]) -> list[Address]:
    """Every complete address of ``fields`` that either reader finds: the stdlib's strict parser and the address-list
    reader that IMAP's ENVELOPE uses (``courrier.mail.addresses``). The identity check covers both, so no address
    can be shown by one and missed by the other."""
    out: list[Address] = []
    for f in fields:
        text = f.text()
        found = [m.addr_spec for m in mail_addresses.mailboxes(mail_addresses.parse(text)) if m.local and m.domain]
        try:
            parsed = _REGISTRY(f.name, text)
            found += [a.addr_spec for g in parsed.groups for a in g.addresses if a.username and a.domain]
        except Exception:  # the stdlib parser raises on a few pathological inputs
            pass
        for spec in found:
            try:
                out.append(parse_address(spec.strip("<>"), utf8=True))
            except AddressError:
                continue  # not an address anyone can use; the strict check refuses the field (550)
    return out


def mailbox_list(headers: Header, name: str, *, required: bool) -> list[Address]:
    """The addresses of an originator field, refusing what RFC 5322 §3.6.2 does not allow (550 5.6.0)."""
    fields = headers.get_all(name)
    if not fields:
        if required:
            raise HeaderProblem(R.BAD_MESSAGE.with_text(f"Message has no {name}: header (RFC 5322 section 3.6)"))
        return []
    if len(fields) > 1:
        raise HeaderProblem(R.BAD_MESSAGE.with_text(f"Message has more than one {name}: header (RFC 5322 section 3.6)"))
    text = fields[0].text()
    excerpt = "".join(c if " " <= c < "\x7f" else "?" for c in text[:80])  # one printable reply line
    broken = R.BAD_MESSAGE.with_text(f"Malformed {name}: header {excerpt!r} (RFC 5322 section 3.6.2)")
    try:
        field: AddressHeader = _REGISTRY(name, text)
        groups, defects = field.groups, field.defects
    except Exception:  # the stdlib parser raises on a few pathological inputs
        raise HeaderProblem(broken) from None
    if any(isinstance(d, email_errors.InvalidHeaderDefect) for d in defects):
        raise HeaderProblem(broken)
    out: list[Address] = []
    for g in groups:
        if g.display_name is not None:  # a group: From/Sender take mailboxes only (RFC 5322 §3.6.2)
            raise HeaderProblem(broken)
        for a in g.addresses:
            if not a.username or not a.domain:
                raise HeaderProblem(broken)
            try:
                out.append(parse_address(a.addr_spec.strip("<>"), utf8=True))
            except AddressError:
                raise HeaderProblem(broken) from None
    if not out:
        raise HeaderProblem(broken)
    if name == "Sender" and len(out) != 1:
        raise HeaderProblem(broken)  # RFC 5322 §3.6.2: Sender is a single mailbox
    return out


def check_originators(account: Account, fields: Header) -> None:
    """Every From and Sender field the reader finds, an obsolete ``From :`` one included, must name the account
    (553 5.7.1) — checked before the 550 for "more than one From", so a second From is refused as the forgery it
    is; then exactly one well-formed From and at most one Sender (550 5.6.0)."""
    if not account.send_as_any:
        for a in _addresses_seen(fields.get_all("From") + fields.get_all("Sender")):
            if not owns(account, a):
                raise HeaderProblem(R.SENDER_NOT_OWNED.with_text(
                    f"Header From/Sender address <{a}> not owned by {account.address}"))
    mailbox_list(fields, "From", required=True)
    mailbox_list(fields, "Sender", required=False)


def owns(account: Account, address: Address) -> bool:
    """True when ``address`` is the account's own address, one of its aliases, or a ``+tag`` of either."""
    mine = {account.address, *account.aliases}
    for a in (address, address.base()):
        if f"{a.local}@{a.domain}".lower() in mine:
            return True
    return False


class SubmissionPolicy(Policy):
    name = "submission"

    def __init__(self, *, hostname: str, domains: tuple[str, ...], accounts: Accounts, store: MailStore,
                 relay: Relay | None = None, sent_copy: bool = False,
                 spool_dir: str | None = None, on_delivered: DeliveredHook | None = None,
                 quotas: Quotas | None = None, on_refused: quota.Refused | None = None) -> None:
        self.hostname = hostname
        self.domains = domains
        self.accounts = accounts
        self.store = store
        self.relay = relay
        self.sent_copy = sent_copy
        self.spool_dir = spool_dir
        self.on_delivered = on_delivered  # success DSNs for local recipients (RFC 3461 §5.2.3)
        self.quotas = quotas  # local recipients: 552 5.2.2 as the MX role (roles/quota.py)
        self.on_refused = on_refused
        self.sieve: SieveFilter | None = None  # the accounts' Sieve scripts (installed by the app)

    # ------------------------------------------------------------------ authentication (RFC 4954)

    def auth_mechanisms(self, session: Session) -> list[str]:
        # RFC 4954 §4 / RFC 6409 §4.3: plaintext mechanisms only under TLS, or for a trusted loopback client.
        return list(MECHANISMS) if session.tls is not None or session.trusted_local else []

    def auth_needs_tls(self, session: Session) -> bool:
        return True  # AUTH before STARTTLS off loopback: 538 5.7.11 (RFC 4954 §6)

    def require_auth(self, session: Session) -> bool:
        return True  # MAIL before AUTH: 530 5.7.0 (RFC 4954 §6)

    async def authenticate(self, session: Session, username: str, password: str) -> Reply:
        account = await check_password(self.accounts, username, password)  # argon2: a thread
        return R.AUTH_OK if account is not None else R.AUTH_FAILED

    def _account(self, session: Session) -> Account | None:
        if not session.user:
            return None
        try:
            return self.accounts.get(normalize(session.user))
        except AccountError:
            return None

    # ------------------------------------------------------------------ envelope

    async def check_mail(self, session: Session, env: Envelope) -> Reply:
        account = self._account(session)
        if account is None:  # deleted since AUTH
            return R.AUTH_REQUIRED.with_text("Authenticated account no longer exists")
        # RFC 6409 §6.1: the envelope sender must be the user's. The null sender (<>, RFC 5321 §4.5.5) claims no
        # identity; the header From check below still applies to such messages.
        if not env.mail_from.is_null and not account.send_as_any and not owns(account, env.mail_from):
            log.event("smtp.sender_refused", level="warn", sid=session.id, user=account.address,
                      sender=f"<{env.mail_from}>")
            return R.SENDER_NOT_OWNED.with_text(f"Sender address <{env.mail_from}> not owned by {account.address}")
        return R.SENDER_OK

    def _is_local(self, address: Address) -> bool:
        return not address.is_domain_literal and address.domain.lower() in self.domains

    async def check_rcpt(self, session: Session, env: Envelope, rcpt: Recipient) -> Reply:
        a = rcpt.address
        if self._is_local(a):
            reply = accept_local(self.accounts, rcpt)
            return (await quota.check_rcpt(self.quotas, env, rcpt) or reply) if reply.ok else reply
        if self.relay is None:
            return R.RELAY_UNAVAILABLE  # no outbound queue yet: say so rather than pretend (451 4.3.2)
        return R.RECIPIENT_OK

    # ------------------------------------------------------------------ message

    def _check_headers(self, account: Account, msg: ReceivedMessage) -> list[str]:
        """Validates From/Sender and the identity they claim; returns the header lines to add (RFC 6409 §8)."""
        fields = parse_headers(header_section(msg))
        check_originators(account, fields)
        added = []
        if "Date" not in fields:  # RFC 6409 §8.3
            added.append("Date: " + email.utils.format_datetime(datetime.now().astimezone()))
        if "Message-ID" not in fields:  # RFC 6409 §8.3, RFC 5322 §3.6.4
            added.append(f"Message-ID: <{secrets.token_hex(8)}.{secrets.token_hex(4)}@{self.hostname}>")
        return added

    def _prepend(self, lines: list[str], msg: ReceivedMessage) -> ReceivedMessage:
        """A new spooled message: the added header lines, then the original (blocking: runs in a thread)."""
        spool = new_spool(self.spool_dir)
        prefix = "".join(line + "\r\n" for line in lines).encode("utf-8")
        spool.write(prefix)
        for chunk in msg.chunks():
            spool.write(chunk)
        spool.flush()
        return ReceivedMessage(spool, msg.size + len(prefix))

    async def deliver(self, session: Session, env: Envelope, msg: ReceivedMessage) -> Reply:
        account = self._account(session)
        if account is None:
            return R.AUTH_REQUIRED.with_text("Authenticated account no longer exists")
        if count_received(msg) > MAX_HOPS:
            return R.LOOP_DETECTED
        try:
            added = self._check_headers(account, msg)
        except HeaderProblem as e:
            log.event("smtp.message_refused", level="warn", qid=env.queue_id, sid=session.id,
                      user=account.address, reason=e.reply.text)
            return e.reply
        final = msg
        if added:
            final = await asyncio.get_running_loop().run_in_executor(None, self._prepend, added, msg)
        try:
            return await self._route(session, env, account, final)
        finally:
            if final is not msg:
                final.file.close()

    async def _route(self, session: Session, env: Envelope, account: Account, msg: ReceivedMessage) -> Reply:
        remote = [r for r in env.rcpts if r.mailbox is None]
        mailboxes: dict[str, str] = {}
        for r in env.rcpts:
            if r.mailbox and r.mailbox not in mailboxes:
                mailboxes[r.mailbox] = str(r.address)
        full = await quota.over_quota(self.quotas, mailboxes, msg.size)  # roles/quota.py: the rule
        refused = [r for r in env.rcpts if r.mailbox in full]
        if full and len(full) == len(mailboxes) and not remote:
            return quota.refused_reply(refused)
        for a in full:
            del mailboxes[a]
        if remote:
            # The outbound queue first: it is the step that may refuse; local copies follow once it has the message.
            if self.relay is None:
                return R.RELAY_UNAVAILABLE
            result = await self.relay(session, env, msg, remote)
            if not result.ok:
                return result
        if mailboxes:
            try:
                await deliver_local(self.store, env, session.hop(), msg, mailboxes, on_delivered=self.on_delivered,
                                    sieve=self.sieve, may_refuse=not remote and not refused)
            except SieveRejected as e:  # RFC 5429 §2.1.1: every local recipient's script rejected it
                return e.reply
        if refused and self.on_refused is not None:
            await self.on_refused(env, session.hop(), msg, refused, quota.refused_reply(refused))
        if self.sent_copy:
            await self._store_sent(env, account, msg)
        return R.QUEUED.with_text(f"OK queued as {env.queue_id}")

    async def _store_sent(self, env: Envelope, account: Account, msg: ReceivedMessage) -> None:
        """The sender's copy in ``Sent``: a convenience, so a failure is logged but does not fail the submission
        (the recipients already have the message; a 4xx now would make the client send it twice)."""
        try:
            await self.store.run(self.store.ensure_root, self.store.account_root(account.address))
            await self.store.deliver([(self.store.folder_for(account.address, "Sent"), b"")], msg.chunks)
        except (OSError, ValueError) as e:
            log.event("smtp.sent_copy_failed", level="error", qid=env.queue_id, user=account.address, error=str(e))
