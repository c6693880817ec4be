"""Brute-force throttling of AUTH: ``[limits] auth_failures_per_ip`` failures per window, then a block.

Two independent counters, one keyed by the client IP and one by the account name tried, so neither a single host
guessing many accounts nor many hosts guessing one account get more than ``limit`` tries per ``window`` (CONTRACT:
"per 5 min, then 454 4.7.0 for 5 min"; RFC 4954 §4 lets a server refuse further attempts with 454 4.7.0).

While a key is blocked the password is not even checked: the slow argon2 verification is exactly what a flood would
otherwise make us spend. Memory is bounded: stale keys are pruned, and at most ``max_keys`` keys are tracked per
counter (the oldest are forgotten first) so a spray of spoofed names cannot grow the tables without limit.
Everything lives in the instance the app builds once; nothing is global.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 300.0  # seconds over which failures are counted (CONTRACT: "per 5 min")
BLOCK = 300.0  # seconds a key stays blocked once it reached the limit (CONTRACT: "454 4.7.0 for 5 min")
MAX_KEYS = 100_000


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class _Counter:
    """Failure timestamps per key in a sliding window, with a block once the limit is reached."""

    def __init__(self, limit: int, window: float, block: float, max_keys: int) -> None:
        self.limit, self.window, self.block, self.max_keys = limit, window, block, max_keys
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def blocked(self, key: str, now: float) -> bool:
        e = self.entries.get(key)
        return e is not None and e.blocked_until > now

    def fail(self, key: str, now: float) -> bool:
        """Records one failure; True when this failure makes the key blocked."""
        e = self.entries.pop(key, None) or _Entry()
        self.entries[key] = e  # most recently failed last: the oldest are evicted first
        while e.failures and e.failures[0] <= now - self.window:
            e.failures.popleft()
        e.failures.append(now)
        newly = False
        if len(e.failures) >= self.limit and e.blocked_until <= now:
            e.blocked_until = now + self.block
            e.failures.clear()
            newly = True
        self._prune(now)
        return newly

    def _prune(self, now: float) -> None:
        while len(self.entries) > self.max_keys:
            self.entries.popitem(last=False)
        # drop a few stale keys from the old end each time: amortised O(1)
        for _ in range(4):
            if not self.entries:
                return
            key, e = next(iter(self.entries.items()))
            stale = e.blocked_until <= now and (not e.failures or e.failures[-1] <= now - self.window)
            if not stale:
                return
            del self.entries[key]


class AuthThrottle:
    """Per-IP and per-account AUTH failure limits, shared by every listener that authenticates."""

    def __init__(self, limit: int, *, window: float = WINDOW, block: float = BLOCK, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.by_ip = _Counter(limit, window, block, max_keys)
        self.by_account = _Counter(limit, window, block, max_keys)

    @staticmethod
    def _account_key(username: str) -> str:
        return username.strip().lower()[:320]

    def blocked(self, ip: str, username: str) -> bool:
        """True when either the client IP or the account tried is blocked right now."""
        now = self.clock()
        return self.by_ip.blocked(ip, now) or self.by_account.blocked(self._account_key(username), now)

    def failure(self, ip: str, username: str) -> list[str]:
        """Counts one failed attempt; returns what became blocked by it ("ip", "account") for the log."""
        now = self.clock()
        newly = []
        if self.by_ip.fail(ip, now):
            newly.append("ip")
        if self.by_account.fail(self._account_key(username), now):
            newly.append("account")
        return newly
