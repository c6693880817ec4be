"""Sieve at local delivery: runs each account's active script (courrier/sieve) and carries out what it decided —
copies into folders (with imap4flags flags, creating folders for ``:create``), redirects, vacation replies,
rejections — for ``deliver_local``.

A broken or looping script never loses a message: any error while running it (a limit, an action conflict, a
folder that cannot be made…) files the message in the account's INBOX as if there were no script, logs
``sieve.error``, and files a note about it in the INBOX once per script version.

Rejections: at SMTP time (``may_refuse``: the MX and submission roles store the message before they answer) a
reject that applies to every mailbox of the transaction raises :class:`SieveRejected`, whose reply is
``550 5.7.1 <reason>`` (RFC 5429 §2.1.1); otherwise each rejecting account sends the sender an MDN (``reject``)
or a DSN (``ereject``).

Loops: a redirected copy carries ``Delivered-To: <account>`` on top; a message that already carries the
account's own line is not redirected again (RFC 5228 §4.2 "loop control") but kept in the INBOX.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from courrier import log
from courrier.delivery import bounce
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import parse_address
from courrier.mail.reply import Reply
from courrier.mailbox.api import MailStore
from courrier.sieve import compose
from courrier.sieve.interp import Envelope as SieveEnvelope
from courrier.sieve.interp import Result, SieveRuntimeError, evaluate
from courrier.sieve.message import MessageView
from courrier.sieve.store import Active, SieveStore

RUN_TIMEOUT = 5.0  # seconds a script run in a worker thread (regex, body) may take before INBOX wins

Send = Callable[[str, list[str], bytes, str], Awaitable[None]]
"""(envelope sender, recipients, message, why: "redirect"/"vacation"/"reject") → queued for delivery."""


class SieveRejected(Exception):
    """Every recipient's script rejected the message while the client still waits: answer ``reply``."""

    def __init__(self, reason: str) -> None:
        text = re.sub(r"[\r\n]+", " ", reason).strip()[:400] or "rejected by the recipient's mail filter"
        self.reply = Reply(550, "5.7.1", text, permanent=True)
        super().__init__(text)


@dataclass
class Copy:
    """One copy to store: the account's folder name (None: the delivery default), its flags, create it?"""

    folder: str | None
    flags: frozenset[str] = frozenset()
    create: bool = False


@dataclass
class Decision:
    copies: list[Copy]
    result: Result | None = None
    report: bytes | None = None  # an error note for the INBOX
    outbound: list[tuple[str, list[str], bytes, str]] = field(default_factory=list)
    vacation_ok: bool = False  # the vacation rules allow a reply (RFC 5230 §4.5-4.6)


class SieveFilter:
    """One per server (the app builds it), shared by the MX and submission roles and the queue's local delivery."""

    def __init__(self, scripts: SieveStore, store: MailStore, hostname: str, send: Send | None = None) -> None:
        self.scripts = scripts
        self.store = store
        self.hostname = hostname
        self.send = send

    async def decide(self, env: Envelope, msg: ReceivedMessage, account: str, rcpt: str,
                     default: str | None) -> Decision | None:
        """What to do for ``account``; None when it has no active script (the caller stores as usual)."""
        if self.scripts.LOOKUP_BLOCKS:
            active = await asyncio.to_thread(self.scripts.active, account)
        else:
            active = self.scripts.active(account)
        if active is None:
            return None
        keep = Decision([Copy(default)])
        if active.script is None:
            return await self._failed(keep, account, active, active.error or "script does not compile", env)
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, msg.read_all) if msg.size > 1 << 20 else msg.read_all()
        view = MessageView(data)
        senv = SieveEnvelope("" if env.mail_from.is_null else str(env.mail_from), rcpt)
        script = active.script

        def run() -> Result:
            return evaluate(script, view, senv, include=lambda name, glob: None if glob else
                            self.scripts.personal(account, name))

        try:
            # a user's regex may backtrack for long, and a large body takes long to decode: those runs go to a
            # worker thread with a deadline, so the event loop every session shares never waits on them
            if "regex" in script.requires or "include" in script.requires or \
                    ("body" in script.requires and msg.size > 256 * 1024):
                result = await asyncio.wait_for(loop.run_in_executor(None, run), RUN_TIMEOUT)
            else:
                result = run()
        except (SieveRuntimeError, TimeoutError, RecursionError, ValueError, LookupError) as e:
            return await self._failed(keep, account, active, str(e) or type(e).__name__, env)
        if result.actions:  # a run that only kept the message (no action) is not logged: the delivery line says it
            log.event("sieve.run", qid=env.queue_id, account=account, script=active.name,
                      actions=",".join(result.actions))
        d = self._carry_out(result, view, env, account, rcpt, default)
        v = result.vacation
        if v is not None and d.vacation_ok:  # the database write runs off the loop (it may wait for a lock)
            sender = str(env.mail_from)
            if await asyncio.to_thread(self.scripts.vacation_due, account, sender, compose.vacation_handle(v),
                                       v.days):
                d.outbound.append(("", [sender], compose.vacation_reply(view, account, v, self.hostname),
                                   "vacation"))
            else:
                log.event("sieve.vacation_skipped", qid=env.queue_id, account=account,
                          reason="already answered within :days")
        return d

    async def _failed(self, keep: Decision, account: str, active: Active, error: str, env: Envelope) -> Decision:
        log.event("sieve.error", level="warn", qid=env.queue_id, account=account, script=active.name,
                  version=active.version, error=error)
        if await asyncio.to_thread(self.scripts.first_error, account, active.version):
            keep.report = compose.error_report(account, active.name, error, self.hostname)
        return keep

    def _carry_out(self, r: Result, view: MessageView, env: Envelope, account: str, rcpt: str,
                   default: str | None) -> Decision:
        d = Decision([], result=r)
        sender = "" if env.mail_from.is_null else str(env.mail_from)
        looped = any(v.strip().lower() == account.lower() for v in view.raw_header("delivered-to"))
        if r.redirects and looped:
            log.event("sieve.loop", level="warn", qid=env.queue_id, account=account,
                      redirects=",".join(r.redirects))
            r.redirects = []
            r.implicit_keep = True
        for box, (flags, create) in r.stored().items():
            d.copies.append(Copy(default if box == "INBOX" else box, flags, create))
        for addr in r.redirects:
            d.outbound.append((sender, [addr], f"Delivered-To: {account}\r\n".encode() + view.data, "redirect"))
        if r.reject is not None and sender:
            d.outbound.append(("", [sender], self._rejection(r, view, env, account, rcpt), "reject"))
        if r.vacation is not None:
            why = compose.vacation_refusal(view, sender, account, r.vacation)
            d.vacation_ok = why is None  # then sent unless this sender was answered within :days (``decide``)
            if why is not None:
                log.event("sieve.vacation_skipped", qid=env.queue_id, account=account, reason=why)
        return d

    def _rejection(self, r: Result, view: MessageView, env: Envelope, account: str, rcpt: str) -> bytes:
        """RFC 5429 §2.1.1, when the SMTP answer is gone: ``reject`` sends an MDN (RFC 8098), ``ereject`` a DSN
        (RFC 3464) with ``5.7.1`` and the reason."""
        reason = r.reject or ""
        if not r.ereject:
            return compose.rejection_mdn(view, account, str(env.mail_from), reason, self.hostname)
        who = next((x for x in env.rcpts if x.mailbox == account), None) or Recipient(parse_address(rcpt))
        about = dataclasses.replace(env, rcpts=[who], ret="HDRS")
        diagnostic = "550 5.7.1 " + " ".join(reason.split())
        return bounce.build_dsn(hostname=self.hostname, env=about, message=view.head + b"\r\n\r\n",
                                entries=[bounce.DSNEntry(who, "failed", "5.7.1", diagnostic)])

    async def flush(self, decisions: list[Decision], env: Envelope) -> None:
        """Queues what the decisions send; a failure is logged (the message itself is stored already)."""
        if self.send is None:
            return
        for d in decisions:
            for sender, rcpts, data, why in d.outbound:
                try:
                    await self.send(sender, rcpts, data, why)
                    log.event(f"sieve.{why}", qid=env.queue_id, to=",".join(rcpts))
                except Exception as e:
                    log.event("sieve.send_failed", level="error", qid=env.queue_id, why=why, error=repr(e))
