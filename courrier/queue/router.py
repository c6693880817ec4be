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
from courrier.mailbox.store import MailStore
from courrier.queue.runner import AttemptHook
from courrier.queue.spool import SpoolEnvelope, SpoolRecipient
from courrier.smtp.address import NULL, AddressError, parse_address
from courrier.smtp.mx import resolve_local
from courrier.smtp.policy import ReceivedMessage
from courrier.smtp.replies import NO_SUCH_USER
from courrier.smtp.session import Envelope, Session


class Remote(Protocol):
    async def deliver(self, domain: str, env: SpoolEnvelope, message: bytes,
                      rcpts: list[tuple[int, SpoolRecipient]], on_attempt: AttemptHook) -> dict[int, Outcome]: ...

    async def close(self) -> None: ...


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class LocalTransport:
    """Queue → Maildir for recipients in our own domains (``courrier sendmail``, DSNs to local senders)."""

    def __init__(self, *, hostname: str, accounts: Accounts, store: MailStore) -> None:
        self.hostname = hostname
        self.accounts = accounts
        self.store = store

    async def deliver(self, env: SpoolEnvelope, message: bytes, rcpts: list[tuple[int, SpoolRecipient]],
                      on_attempt: AttemptHook) -> dict[int, Outcome]:
        results: dict[int, Outcome] = {}
        mailboxes: dict[str, str] = {}
        targets: dict[int, str] = {}
        loop = asyncio.get_running_loop()
        for i, r in rcpts:
            try:
                addr = parse_address(r.address)
            except AddressError as e:
                results[i] = Outcome(R.BAD_RECIPIENT.filled(error=e), host="local")
                continue
            mailbox = await loop.run_in_executor(None, resolve_local, self.accounts, addr)
            if mailbox is None:
                results[i] = Outcome(NO_SUCH_USER, host="local")
                continue
            mailboxes.setdefault(mailbox, r.address)
            targets[i] = mailbox
        if mailboxes:
            sender = NULL
            if env.sender:
                try:
                    sender = parse_address(env.sender)
                except AddressError:
                    sender = NULL
            session = Session(peer_ip="127.0.0.1", peer_port=0, local_ip="127.0.0.1", local_port=0,
                              listener="queue", hostname=self.hostname, helo=env.origin.split(" ")[0] or "queue")
            e = Envelope(mail_from=sender, body=env.body, smtputf8=env.smtputf8, queue_id=env.qid,
                         received_at=env.received_at)
            try:
                await deliver_local(self.store, session, e, ReceivedMessage(io.BytesIO(message), len(message)),
                                    mailboxes)
                o = Outcome(R.DELIVERED_TO_MAILBOX, host="local")
            except OSError as err:
                o = Outcome(R.LOCAL_FAILED.filled(error=err.strerror or err), host="local")
            for i in targets:
                results[i] = o
        by_outcome: dict[Outcome, list[str]] = {}
        for i, r in rcpts:
            by_outcome.setdefault(results[i], []).append(r.address)
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

    async def deliver(self, env: SpoolEnvelope, message: bytes, rcpts: list[tuple[int, SpoolRecipient]],
                      on_attempt: AttemptHook) -> dict[int, Outcome]:
        local = [(i, r) for i, r in rcpts if self.is_local(domain_of(r.address))]
        groups: dict[str, list[tuple[int, SpoolRecipient]]] = {}
        for i, r in rcpts:
            if not self.is_local(domain_of(r.address)):
                # with a smarthost every remote recipient shares one destination (one transaction)
                groups.setdefault("" if self.smarthost else domain_of(r.address), []).append((i, r))
        jobs = [self.remote.deliver(d, env, message, g, on_attempt) for d, g in groups.items()]
        if local:
            jobs.append(self.local.deliver(env, message, local, on_attempt))
        results: dict[int, Outcome] = {}
        for part in await asyncio.gather(*jobs):
            results.update(part)
        return results

    async def close(self) -> None:
        await self.remote.close()
