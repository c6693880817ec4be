"""The failed-login limiter shared by SMTP, IMAP, POP3, ManageSieve and HTTP: per client, per account, bounded.

Per client (an IPv4 address, or the IPv6 prefix ``[limits] ipv6_prefix`` around an IPv6 address — one host owns a
whole /64): ``budget`` failures (``[limits] auth_failures_per_ip``) in a sliding ``window`` of 5 minutes, then the
client is locked for 5 minutes (CONTRACT: "per 5 min, then 454 4.7.0 for 5 min"). While locked, every login from it
is refused without checking the password — a correct one included — and other clients are not affected.

Atomic: a slot is taken *before* the password is checked (:meth:`AuthLimiter.acquire`) and the checks in flight
count against the budget, so 60 concurrent wrong attempts get at most ``budget`` checks, not 60.

Per account (what a spread-out attack on one mailbox looks like): failures on an account from any client are
counted too, but one client can never lock an account for everybody — its own budget is smaller than what locks an
account. An account is locked when its failures in the window come from ``max(2, budget)`` different clients, or
reach ``3 × budget`` in all. The lock applies only to *unknown* clients: one that logged in to that account
successfully (in the last ``known_for`` seconds) keeps getting its password checked, so an attacker cannot lock the
real user out of their own mailbox, web UI included.

Memory is bounded: each table (clients, accounts, known pairs) keeps at most ``max_keys`` entries, least recently
used forgotten first, and stale entries are dropped as new ones arrive. Nothing is global: the app builds one
limiter and hands it to every protocol.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from courrier.net.limits import client_key

WINDOW = 300.0  # seconds over which failures are counted (CONTRACT: "per 5 min")
LOCK = 300.0  # seconds a client or account stays locked (CONTRACT: "then 454 4.7.0 for 5 min")
MAX_KEYS = 50_000  # per table; all three full measured ~66 MB (tests/auth/test_limiter.py bounds the count)
KNOWN_FOR = 30 * 86400.0  # a successful login keeps its client "known" to that account this long


def account_key(user: str) -> str:
    """Accounts are counted case-insensitively (addresses are normalised that way by ``accounts``), bounded."""
    return user.strip().lower()[:320]


# Records are small on purpose (slots, plain lists): a client ~320 octets, an account with failures ~500.


@dataclass(slots=True)
class _Client:
    failures: list[float] = field(default_factory=list)  # oldest first, at most ``budget``
    in_flight: int = 0
    locked_until: float = 0.0


@dataclass(slots=True)
class _Account:
    failures: list[tuple[float, str]] = field(default_factory=list)  # (time, client key), oldest first
    in_flight: dict[str, int] = field(default_factory=dict)  # client key → checks running
    locked_until: float = 0.0


R = TypeVar("R")
T = TypeVar("T")


def _trim(failures: list[T], since: float, when: Callable[[T], float]) -> None:
    """Drops the failures at or before ``since`` (the oldest are first; lists are a few entries long)."""
    n = 0
    while n < len(failures) and when(failures[n]) <= since:
        n += 1
    if n:
        del failures[:n]


def _time(failure: tuple[float, str]) -> float:
    return failure[0]


class _Table(Generic[R]):
    """An LRU map of at most ``max_keys`` records; ``stale(record, now)`` lets old ones go early."""

    def __init__(self, make: Callable[[], R], stale: Callable[[R, float], bool], max_keys: int) -> None:
        self.make, self.stale, self.max_keys = make, stale, max_keys
        self.entries: OrderedDict[str, R] = OrderedDict()

    def peek(self, key: str) -> R | None:
        return self.entries.get(key)

    def get(self, key: str, now: float) -> R:
        rec = self.entries.get(key)
        if rec is None:
            self._prune(now)  # before inserting: a fresh record looks stale until it is used
            rec = self.entries[key] = self.make()
        else:
            self.entries.move_to_end(key)
        return rec

    def _prune(self, now: float) -> None:
        while len(self.entries) >= self.max_keys:
            self.entries.popitem(last=False)
        for _ in range(4):  # a few stale records from the least recently used end each time: amortised O(1)
            if not self.entries:
                return
            key, rec = next(iter(self.entries.items()))
            if not self.stale(rec, now):
                return
            del self.entries[key]


class Slot:
    """One login attempt allowed to check a password; :meth:`release` says how it went (exactly once counts)."""

    def __init__(self, limiter: AuthLimiter, client: str, account: str | None) -> None:
        self.limiter, self.client, self.account = limiter, client, account
        self.done = False

    def release(self, ok: bool) -> list[str]:
        """Ends the attempt; a failure is counted. Returns what this made locked ("client", "account")."""
        if self.done:
            return []
        self.done = True
        return self.limiter._release(self, ok)


class AuthLimiter:
    def __init__(self, budget: int, *, ipv6_prefix: int = 64, window: float = WINDOW, lock: float = LOCK,
                 max_keys: int = MAX_KEYS, known_for: float = KNOWN_FOR,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget, self.ipv6_prefix, self.window, self.lock = budget, ipv6_prefix, window, lock
        self.account_clients = max(2, budget)  # distinct failing clients that lock an account
        self.account_failures = 3 * budget  # failures in all that lock an account
        self.known_for, self.clock = known_for, clock
        self.clients: _Table[_Client] = _Table(_Client, self._client_stale, max_keys)
        self.accounts: _Table[_Account] = _Table(_Account, self._account_stale, max_keys)
        self.known: OrderedDict[tuple[str, str], float] = OrderedDict()  # (account, client) → known until
        self.max_keys = max_keys

    def key(self, ip: str) -> str:
        return client_key(ip, self.ipv6_prefix)

    # ------------------------------------------------------------------ state

    def _client_stale(self, c: _Client, now: float) -> bool:
        return c.in_flight == 0 and c.locked_until <= now and (not c.failures or c.failures[-1] <= now - self.window)

    def _account_stale(self, a: _Account, now: float) -> bool:
        return (not a.in_flight and a.locked_until <= now
                and (not a.failures or a.failures[-1][0] <= now - self.window))

    def _client_full(self, c: _Client, now: float) -> bool:
        if c.locked_until > now:
            return True
        _trim(c.failures, now - self.window, float)
        return len(c.failures) + c.in_flight >= self.budget

    def _account_full(self, a: _Account, client: str, now: float) -> bool:
        if a.locked_until > now:
            return True
        _trim(a.failures, now - self.window, _time)
        if len(a.failures) + sum(a.in_flight.values()) >= self.account_failures:
            return True
        contributors = {c for _, c in a.failures} | set(a.in_flight)
        return client not in contributors and len(contributors) >= self.account_clients

    def is_known(self, account: str, client: str, now: float) -> bool:
        until = self.known.get((account, client))
        if until is None:
            return False
        if until <= now:
            del self.known[(account, client)]
            return False
        return True

    # ------------------------------------------------------------------ the three questions

    def refused(self, client: str) -> bool:
        """True when this client may not try now (locked, or its budget is taken by failures and checks in
        flight). Changes nothing: protocols ask it before starting a SASL exchange."""
        c = self.clients.peek(client)
        return c is not None and self._client_full(c, self.clock())

    def acquire(self, client: str, account: str | None) -> Slot | None:
        """A slot to check one password for ``account`` (any case) from ``client``, or None: refuse without
        checking."""
        now = self.clock()
        account = account_key(account) if account is not None else None
        c = self.clients.get(client, now)
        if self._client_full(c, now):
            return None
        if account is not None:
            a = self.accounts.get(account, now)
            if self._account_full(a, client, now) and not self.is_known(account, client, now):
                return None
            a.in_flight[client] = a.in_flight.get(client, 0) + 1
        c.in_flight += 1
        return Slot(self, client, account)

    def fail(self, client: str) -> list[str]:
        """A failure that needed no password check (malformed SASL, a refused authorization identity)."""
        now = self.clock()
        return ["client"] if self._client_failed(self.clients.get(client, now), now) else []

    # ------------------------------------------------------------------ bookkeeping

    def _client_failed(self, c: _Client, now: float) -> bool:
        if c.locked_until > now:  # a check that ends after the lock began: the lock neither grows nor stacks
            return False
        _trim(c.failures, now - self.window, float)
        c.failures.append(now)
        if len(c.failures) >= self.budget:
            c.locked_until = now + self.lock
            c.failures.clear()
            return True
        return False

    def _release(self, slot: Slot, ok: bool) -> list[str]:
        now = self.clock()
        c = self.clients.get(slot.client, now)
        c.in_flight = max(0, c.in_flight - 1)
        a = self.accounts.get(slot.account, now) if slot.account is not None else None
        if a is not None:
            left = a.in_flight.pop(slot.client, 0) - 1
            if left > 0:
                a.in_flight[slot.client] = left
        if ok:
            if slot.account is not None:
                self._remember(slot.account, slot.client, now)
            return []
        newly = ["client"] if self._client_failed(c, now) else []
        if a is not None and a.locked_until <= now:
            _trim(a.failures, now - self.window, _time)
            a.failures.append((now, slot.client))
            if (len(a.failures) >= self.account_failures
                    or len({cl for _, cl in a.failures}) >= self.account_clients):
                a.locked_until = now + self.lock
                a.failures.clear()
                newly.append("account")
        return newly

    def _remember(self, account: str, client: str, now: float) -> None:
        self.known[(account, client)] = now + self.known_for
        self.known.move_to_end((account, client))
        while len(self.known) > self.max_keys:
            self.known.popitem(last=False)
