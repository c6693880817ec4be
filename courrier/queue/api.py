"""The queue store's interface: what the runner, ``courrier queue`` and the web API need of the queue's state.

The spool holds each message; a queue store holds its schedule (attempts, next attempt, last error), each
recipient's status and the delivery log (one row per attempt, kept after the message is gone). The implementation is
``queue/store.py:SQLiteQueueStore`` (tables of ``courrier.db``); the PostgreSQL store of the cluster issue will be the
second, so nothing here speaks of SQL. Every method blocks: the runner calls them from one dedicated thread, the
command directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from courrier.delivery.outcome import Outcome


@dataclass(frozen=True)
class QueueRow:
    qid: str
    sender: str
    created: float
    size: int
    attempts: int
    next_attempt: float
    last_error: str | None
    delay_notified: bool
    rcpts: tuple[tuple[int, str, str], ...]  # (idx, address, status)

    @property
    def pending(self) -> list[str]:
        return [a for _, a, s in self.rcpts if s == "pending"]


@dataclass(frozen=True)
class LogRow:
    time: float
    recipients: str
    host: str | None
    address: str | None
    result: str
    code: int | None
    enhanced: str | None
    text: str | None
    tls: str | None
    tls_policy: str | None = None  # dane, mta-sts-enforce, mta-sts-testing, opportunistic (migration 0045)


@runtime_checkable
class QueueStore(Protocol):
    # -- writes
    def add(self, qid: str, sender: str, created: float, size: int, rcpts: list[str],
            next_attempt: float | None = None) -> bool:
        """Registers a spooled message; False when it was already known (re-adoption after a crash)."""
        ...

    def record(self, qid: str, results: dict[int, Outcome], *, next_attempt: float | None,
               last_error: str | None, count_attempt: bool = True,
               log_rows: Sequence[tuple[list[str], Outcome, str]] = (), delay_notified: bool = False) -> None:
        """The outcome of one pass over a message, all or nothing: the attempts' log rows, each recipient's new
        status (keyed by its index), the schedule (when ``next_attempt`` is given) and the delay-notice mark."""
        ...

    def log(self, qid: str, recipients: list[str], o: Outcome, result: str) -> None:
        """One delivery-log row outside a pass (a DSN sent, a message deleted by hand)."""
        ...

    def set_delay_notified(self, qid: str) -> None: ...

    def remove(self, qid: str) -> None:
        """Forgets the message (its log stays)."""
        ...

    def retry_now(self, qid: str | None = None) -> int:
        """Makes one message (or every message: ``flush``) due now; returns how many."""
        ...

    # -- reads
    def get(self, qid: str) -> QueueRow | None: ...

    def all(self) -> list[QueueRow]:
        """Every queued message, oldest first."""
        ...

    def qids(self) -> set[str]: ...

    def due(self, now: float, limit: int, exclude: set[str]) -> tuple[list[str], float | None]:
        """Up to ``limit`` due queue ids not in ``exclude`` (oldest schedule first), and the next future due time."""
        ...

    def history(self, qid: str) -> list[LogRow]:
        """The message's delivery log, oldest first."""
        ...

    def close(self) -> None:
        """Releases what the calling thread holds."""
        ...
