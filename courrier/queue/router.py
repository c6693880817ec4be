"""Where each queued recipient goes: a local domain → the Maildir (the same delivery as the MX role), anything else →
the remote SMTP client, one transaction per destination domain, domains in parallel."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Protocol

from courrier.accounts import Accounts
from courrier.delivery import replies as R
from courrier.delivery.local import deliver_local
from courrier.delivery.outcome import Outcome
from courrier.delivery.sieve import SieveFilter
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import AddressError, parse_address
from courrier.mailbox.api import MailStore
from courrier.queue.runner import AttemptHook
from courrier.quota import Quotas
from courrier.smtp.replies import NO_SUCH_USER


class Remote(Protocol):
    async def deliver(self, domain: str, env: Envelope, message: bytes,
                      rcpts: list[tuple[int, Recipient]], on_attempt: AttemptHook) -> dict[int, Outcome]: ...

    async def close(self) -> None: ...


class LocalTransport:
    """Queue → Maildir for recipients in our own domains (``courrier sendmail``, DSNs to local senders).

    Delivery out of the queue is no receipt: the copies get Return-Path and Delivered-To, and the Received: line is
    the one written when the message entered the queue (``courrier.mail.trace``) — none is made up here.
    """

    def __init__(self, *, hostname: str, accounts: Accounts, store: MailStore, quotas: Quotas | None = None) -> None:
        self.hostname = hostname
        self.accounts = accounts
        self.store = store
        self.quotas = quotas  # a mailbox the message would take past its quota: permanent 5.2.2, a DSN (RFC 3463)
        self.sieve: SieveFilter | None = None  # the accounts' Sieve scripts (installed by the app)

    async def deliver(self, env: Envelope, message: bytes, rcpts: list[tuple[int, Recipient]],
                      on_attempt: AttemptHook) -> dict[int, Outcome]:
        results: dict[int, Outcome] = {}
        mailboxes: dict[str, str] = {}
        targets: dict[int, str] = {}
        loop = asyncio.get_running_loop()
        for i, r in rcpts:
            try:
                addr = parse_address(str(r.address))  # as the spool holds it: checked again before it names a file
            except AddressError as e:
                results[i] = Outcome(R.BAD_RECIPIENT.filled(error=e), host="local")
                continue
            mailbox = await loop.run_in_executor(None, self.accounts.local_mailbox, addr)
            if mailbox is None:
                results[i] = Outcome(NO_SUCH_USER, host="local")
                continue
            q = await self.quotas.refused(mailbox, len(message)) if self.quotas is not None else None
            if q is not None:
                results[i] = Outcome(R.MAILBOX_FULL.filled(account=mailbox, limit=q.limit), host="local")
                continue
            mailboxes.setdefault(mailbox, str(r.address))
            targets[i] = mailbox
        if mailboxes:
            try:
                await deliver_local(self.store, env, None, ReceivedMessage(io.BytesIO(message), len(message)),
                                    mailboxes, sieve=self.sieve)
                o = Outcome(R.DELIVERED_TO_MAILBOX, host="local")
            except OSError as err:
                o = Outcome(R.LOCAL_FAILED.filled(error=err.strerror or err), host="local")
            for i in targets:
                results[i] = o
        by_outcome: dict[Outcome, list[str]] = {}
        for i, r in rcpts:
            by_outcome.setdefault(results[i], []).append(str(r.address))
        for o, addrs in by_outcome.items():
            on_attempt(addrs, o)
        return results


class Router:
    """The queue's Transport: splits recipients between local delivery and the remote client."""

    def __init__(self, *, is_local: Callable[[str], bool], local: LocalTransport, remote: Remote,
                 smarthost: bool = False) -> None:
        self.is_local = is_local
        self.local = local
        self.remote = remote
        self.smarthost = smarthost

    async def deliver(self, env: Envelope, message: bytes, rcpts: list[tuple[int, Recipient]],
                      on_attempt: AttemptHook) -> dict[int, Outcome]:
        local = [(i, r) for i, r in rcpts if self.is_local(r.address.domain.lower())]
        groups: dict[str, list[tuple[int, Recipient]]] = {}
        for i, r in rcpts:
            if not self.is_local(r.address.domain.lower()):
                # with a smarthost every remote recipient shares one destination (one transaction)
                groups.setdefault("" if self.smarthost else r.address.domain.lower(), []).append((i, r))
        jobs = [self.remote.deliver(d, env, message, g, on_attempt) for d, g in groups.items()]
        if local:
            jobs.append(self.local.deliver(env, message, local, on_attempt))
        results: dict[int, Outcome] = {}
        for part in await asyncio.gather(*jobs):
            results.update(part)
        return results

    async def close(self) -> None:
        await self.remote.close()
