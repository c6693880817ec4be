"""The door every login goes through, whatever the protocol: limiter slot first, then the password check off the
event loop, then the outcome counted and logged.

A protocol asks :meth:`AuthGate.refused` before it starts a SASL exchange (no point reading credentials it will
not check), reports undecodable SASL with :meth:`AuthGate.malformed` (it counts as a failure), and checks a
password with :meth:`AuthGate.login` — or, when its policy does the checking (SMTP roles), inside
``with gate.slot(...)``. A refusal by the limiter raises :class:`Limited`: the protocol answers "try later"
(SMTP ``454 4.7.0``, IMAP ``NO [UNAVAILABLE]``, POP3 ``-ERR [SYS/TEMP]``, HTTP 429), never "wrong password",
because no password was checked.

Log lines (``key=value``; passwords never): ``auth.check`` once per password actually checked, with ``result=ok``
or ``failed`` (count them to see what a flood cost); ``<protocol>.auth_throttled`` for each attempt refused by the
limiter; ``<protocol>.auth_blocked`` when a client or account becomes locked; ``<protocol>.auth_malformed``.

Several nodes (a cluster) count against one budget: the gate then also has ``shared`` counters
(:class:`SharedCounters`, courrier/cluster/limits.py), asked in a worker thread before each check (:meth:`AuthGate.aslot`)
and told how it ended. Without them (the local store) nothing changes. When the shared counters cannot be reached the
node's own limiter still holds, and the attempt is let through to it (the outage is logged).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from courrier import log
from courrier.auth.limiter import AuthLimiter
from courrier.config import LimitsConfig

if TYPE_CHECKING:
    from courrier.accounts import Account, Accounts

T = TypeVar("T")


class Limited(Exception):
    """The limiter refused this login: it was not checked. Answer "try later", not "authentication failed"."""


class SharedCounters(Protocol):
    """Failure counters several nodes share. ``reserve`` and ``settle``/``failed`` block (run in a thread); an
    OSError means the counters cannot be reached now."""

    def locked(self, client: str) -> bool:
        """A lock of this client already known here (no I/O: asked on the event loop)."""
        ...

    def reserve(self, client: str, user: str | None) -> Any | None:
        """A ticket for one check, or None: refused (nothing counted)."""
        ...

    def settle(self, ticket: Any, outcome: str) -> list[str]:
        """``ok``, ``failed`` or ``unused``; returns what became locked ("client", "account")."""
        ...

    def failed(self, client: str) -> list[str]: ...


class Attempt:
    """One login under a limiter slot; set ``ok = True`` once the credentials proved good."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.ok = False


async def check_password(accounts: Accounts, user: str, password: str) -> Account | None:
    """argon2id verification through ``Accounts.verify``, in a worker thread: it is slow on purpose and must not
    stall the event loop every protocol shares."""
    return await asyncio.get_running_loop().run_in_executor(None, accounts.verify, user, password)


class AuthGate:
    """One per server (built by the app, shared by SMTP, IMAP, POP3 and HTTP): its limiter is the shared state."""

    def __init__(self, limiter: AuthLimiter, shared: SharedCounters | None = None) -> None:
        self.limiter = limiter
        self.shared = shared  # a cluster: the counters every node shares (None: this node's limiter only)
        self.checks = 0  # passwords checked since start (the figure a flood is measured by)

    @classmethod
    def from_limits(cls, limits: LimitsConfig) -> AuthGate:
        return cls(AuthLimiter(limits.auth_failures_per_ip, ipv6_prefix=limits.ipv6_prefix))

    def refused(self, ip: str, protocol: str) -> bool:
        """True (and logged) when ``ip``'s client may not log in now; ask before reading credentials."""
        client = self.limiter.key(ip)
        if self.limiter.refused(client) or (self.shared is not None and self.shared.locked(client)):
            log.event(f"{protocol}.auth_throttled", level="warn", ip=ip, client=self.limiter.key(ip))
            return True
        return False

    def malformed(self, ip: str, protocol: str, reason: str) -> None:
        """Undecodable SASL or a refused authorization identity: no password to check, but a failure all the same
        (capture mode's accept-any path included), so garbage cannot be sent without limit."""
        client = self.limiter.key(ip)
        newly = self.limiter.fail(client)
        log.event(f"{protocol}.auth_malformed", level="warn", ip=ip, reason=reason)
        if newly:
            log.event(f"{protocol}.auth_blocked", level="warn", ip=ip, client=client, blocked="client")
        if self.shared is not None:  # counted for the cluster too, without holding the answer back
            shared = self.shared
            try:
                fut = asyncio.get_running_loop().run_in_executor(None, shared.failed, client)
            except RuntimeError:  # no loop (a synchronous caller): count it here
                self._shared_done(protocol, ip, client, "", shared.failed, client)
                return
            fut.add_done_callback(lambda f: self._shared_logged(f, protocol, ip, client, ""))

    def _shared_logged(self, f: asyncio.Future[list[str]], protocol: str, ip: str, client: str, user: str) -> None:
        if f.cancelled():
            return
        e = f.exception()
        if e is not None:
            log.event("auth.shared_unavailable", level="warn", error=str(e))
            return
        if f.result():
            log.event(f"{protocol}.auth_blocked", level="warn", ip=ip, client=client, user=user,
                      blocked=",".join(f.result()), scope="cluster")

    def _shared_done(self, protocol: str, ip: str, client: str, user: str, fn: Callable[..., list[str]],
                     *args: Any) -> None:
        try:
            newly = fn(*args)
        except OSError as e:
            log.event("auth.shared_unavailable", level="warn", error=str(e))
            return
        if newly:
            log.event(f"{protocol}.auth_blocked", level="warn", ip=ip, client=client, user=user,
                      blocked=",".join(newly), scope="cluster")

    @contextmanager
    def slot(self, ip: str, user: str, protocol: str) -> Iterator[Attempt]:
        """Takes a limiter slot for one check of ``user``'s credentials from ``ip`` (raises Limited), yields an
        Attempt; the failure is counted unless ``attempt.ok`` was set — an exception or a cancelled task (the
        client hung up while its password was being checked) counts as a failure too."""
        client = self.limiter.key(ip)
        slot = self.limiter.acquire(client, user)
        if slot is None:
            log.event(f"{protocol}.auth_throttled", level="warn", ip=ip, client=client, user=user)
            raise Limited()
        attempt = Attempt(user)
        try:
            yield attempt
        finally:
            newly = slot.release(attempt.ok)
            self.checks += 1
            log.event("auth.check", protocol=protocol, ip=ip, user=user, result="ok" if attempt.ok else "failed")
            if newly:
                log.event(f"{protocol}.auth_blocked", level="warn", ip=ip, client=client, user=user,
                          blocked=",".join(newly))

    @asynccontextmanager
    async def aslot(self, ip: str, user: str, protocol: str) -> AsyncIterator[Attempt]:
        """:meth:`slot`, with the cluster's counters asked first when there are any (a slot in the shared ledger,
        taken in a thread; given back or kept as a failure when the check ends). Raises Limited."""
        shared = self.shared
        if shared is None:
            with self.slot(ip, user, protocol) as attempt:
                yield attempt
            return
        client = self.limiter.key(ip)
        loop = asyncio.get_running_loop()
        try:
            ticket = await loop.run_in_executor(None, shared.reserve, client, user)
        except OSError as e:  # the shared counters are out of reach: this node's limiter still holds
            log.event("auth.shared_unavailable", level="warn", error=str(e))
            with self.slot(ip, user, protocol) as attempt:
                yield attempt
            return
        if ticket is None:
            log.event(f"{protocol}.auth_throttled", level="warn", ip=ip, client=client, user=user, scope="cluster")
            raise Limited()
        held: Attempt | None = None  # stays None when this node's limiter refuses: the shared slot goes back unused
        try:
            with self.slot(ip, user, protocol) as held:
                yield held
        finally:
            outcome = "unused" if held is None else "ok" if held.ok else "failed"
            await asyncio.shield(loop.run_in_executor(None, self._shared_done, protocol, ip, client, user,
                                                      shared.settle, ticket, outcome))

    async def login(self, ip: str, user: str, password: str, protocol: str,
                    verify: Callable[[str, str], T | None]) -> T | None:
        """``verify(user, password)`` (blocking: run in a thread) under a slot; its result, None when wrong.
        Raises Limited when the limiter refuses."""
        async with self.aslot(ip, user, protocol) as attempt:
            result = await asyncio.get_running_loop().run_in_executor(None, verify, user, password)
            attempt.ok = bool(result)
            return result

    def accept_any(self, ip: str, protocol: str) -> None:
        """Capture mode's "any credentials": nothing to check and nothing spent, but a client locked by its
        malformed attempts stays locked (raises Limited)."""
        if self.refused(ip, protocol):
            raise Limited()
