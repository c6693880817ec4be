"""When to try again: exponential back-off between ``retry_first`` and ``retry_max``, expiry after ``max_lifetime``.

Default schedule (``[delivery]``): 5 min, 10 min, 20 min, 40 min, 80 min, 160 min, then every 4 h, until the message
is 5 days old; one delay notice once it is 4 h old. RFC 5321 §4.5.4.1 asks for at least 30 minutes between retries
and 4–5 days before giving up; the first retry comes sooner because most temporary failures (greylisting, a restart)
clear within minutes. Tests shrink every duration to seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    retry_first: float = 300.0
    retry_max: float = 4 * 3600.0
    max_lifetime: float = 5 * 86400.0
    delay_notice: float = 4 * 3600.0

    def next_delay(self, failed_attempts: int) -> float:
        """Wait after the ``failed_attempts``-th failure (0 → ``retry_first``), doubling, capped at ``retry_max``."""
        return min(self.retry_first * (2 ** min(failed_attempts, 40)), self.retry_max)

    def next_attempt(self, created: float, now: float, failed_attempts: int) -> float:
        """The next try, never later than the expiry time (so the bounce goes out on time)."""
        return min(now + self.next_delay(failed_attempts), created + self.max_lifetime)

    def expired(self, created: float, now: float) -> bool:
        return now - created >= self.max_lifetime

    def delay_due(self, created: float, now: float) -> bool:
        return now - created >= self.delay_notice
