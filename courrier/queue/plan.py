"""The queue's decisions for one pass over one message, without I/O: what happens to each recipient, which notices
go to the sender, when to try again, and whether the message is finished.

The runner reads the spool file and the database row, asks the transport, then hands the outcomes here and carries
out the :class:`Plan` (spool the DSNs, record the states, forget the message). The rules are kept pure so that each
one has a unit test of its own (tests/queue/test_plan.py, as maddy's ``TestQueueDelivery_*`` and chasquid's
``TestDSNOnTimeout`` do) instead of being reachable only end to end:

- 2xx → sent; 5xx (or an outcome marked permanent) → failed; anything else → deferred, retried on the back-off of
  :class:`~courrier.queue.schedule.Schedule`; a recipient the transport forgot is deferred (4.3.0);
- a message past ``max_lifetime`` is not tried: every pending recipient fails with 4.4.7 (RFC 3463: "delivery time
  expired", reported as a failure); one with too many ``Received:`` fields fails with 5.4.6 (RFC 5321 §6.3);
- notices, in this order: a failure report for the failed recipients, one delay notice per message once it is
  ``delay_notice`` old and still deferred, a success report (NOTIFY=SUCCESS) — "delivered" for the local route
  (RFC 3461 §5.2.3), "relayed" to a next hop without DSN (§5.2.2); a next hop that took our NOTIFY reports itself
  (§5.2.1). Each recipient's NOTIFY picks whether it is listed; nothing at all for the null sender (§6.2).

The plan speaks of recipients by their index in the spooled envelope (:class:`Target`), so it depends on no spool or
envelope type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from courrier.delivery import bounce
from courrier.delivery import replies as R
from courrier.delivery.loops import MAX_HOPS
from courrier.delivery.outcome import Outcome
from courrier.queue.schedule import Schedule

NO_OUTCOME = Outcome(R.NO_OUTCOME, host="queue")


@dataclass(frozen=True)
class Target:
    """One recipient still to be delivered, as the plan needs it."""

    idx: int  # its index in the spooled envelope, which the database row uses too
    address: str
    notify: tuple[str, ...] = ()  # RFC 3461 §4.1 NOTIFY as received (empty: not given)


@dataclass(frozen=True)
class Record:
    """What the plan needs of a queued message: its schedule state and its pending recipients."""

    created: float
    pending: tuple[Target, ...]
    attempts: int = 0  # failed passes so far (the back-off grows with them)
    last_error: str | None = None
    delay_notified: bool = False
    reports: bool = True  # False for a message from the null sender ``<>``: it never gets a DSN


@dataclass(frozen=True)
class Entry:
    """One recipient's line in a DSN (``bounce.DSNEntry`` once the runner puts the spooled recipient in)."""

    idx: int
    action: str  # RFC 3464 §2.3.3: failed, delayed, delivered, relayed
    status: str  # RFC 3463 "X.Y.Z"
    diagnostic: str | None
    remote_mta: str | None


@dataclass(frozen=True)
class Plan:
    outcomes: Mapping[int, Outcome]  # every pending recipient's outcome, recorded as its state
    sent: tuple[int, ...]
    failed: tuple[int, ...]
    deferred: tuple[int, ...]
    next_attempt: float | None  # None when nothing is deferred
    last_error: str | None  # the first deferred recipient's reply, shown by ``courrier queue list``
    failure: tuple[Entry, ...] = ()  # the failure report (bounce)
    delay: tuple[Entry, ...] = ()  # the delay notice
    success: tuple[Entry, ...] = ()  # the success report (delivered / relayed)
    delay_notified: bool = False  # the delay notice is due now: remember it so it goes only once

    @property
    def finished(self) -> bool:
        """Nothing left to retry: the spool file and the row can go."""
        return not self.deferred

    @property
    def notices(self) -> list[tuple[Entry, ...]]:
        """The DSNs to send, one message each, in the order failure, delay, success."""
        return [n for n in (self.failure, self.delay, self.success) if n]


def result_of(o: Outcome) -> str:
    """The delivery-log word for an outcome: sent, failed or deferred."""
    return "sent" if o.ok else ("failed" if o.permanent else "deferred")


def human(seconds: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n:
            return f"{seconds / n:.0f}{unit}"
    return f"{seconds:.0f}s"


def before_delivery(record: Record, hops: int, now: float, schedule: Schedule) -> Outcome | None:
    """The outcome every pending recipient gets without a delivery attempt, or None when the message may be tried:
    expired after ``max_lifetime`` (4.4.7, a failure), or more than ``MAX_HOPS`` ``Received:`` fields (5.4.6,
    RFC 5321 §6.3)."""
    if schedule.expired(record.created, now):
        expired = R.EXPIRED.filled(age=human(now - record.created))
        if record.last_error:
            expired = expired.with_text(f"{expired.text}; last error: {record.last_error}")
        return Outcome(expired, host="queue")
    if hops > MAX_HOPS:
        return Outcome(R.LOOP.filled(max_hops=MAX_HOPS), host="queue")
    return None


def _diag(o: Outcome) -> str | None:
    return str(o) if o.code else None


def _wants(t: Target, kind: str) -> bool:
    return bounce.wants_notify(t.notify, kind)


def plan(record: Record, results: Mapping[int, Outcome], now: float, schedule: Schedule) -> Plan:
    """What to do after one pass: ``results`` are the outcomes by recipient index (from the transport, or
    :func:`before_delivery`'s for everyone)."""
    outcomes = {t.idx: results.get(t.idx, NO_OUTCOME) for t in record.pending}
    sent = [t for t in record.pending if outcomes[t.idx].ok]
    failed = [t for t in record.pending if outcomes[t.idx].permanent]
    deferred = [t for t in record.pending if not outcomes[t.idx].ok and not outcomes[t.idx].permanent]
    delay_now = bool(deferred and record.reports and not record.delay_notified
                     and schedule.delay_due(record.created, now))
    failure: list[Entry] = []
    delay: list[Entry] = []
    success: list[Entry] = []
    if record.reports:
        for t in failed:
            o = outcomes[t.idx]
            if _wants(t, "FAILURE"):
                failure.append(Entry(t.idx, "failed", o.status, _diag(o), o.host))
        if delay_now:
            for t in deferred:
                o = outcomes[t.idx]
                if _wants(t, "DELAY"):
                    delay.append(Entry(t.idx, "delayed", o.status, _diag(o), o.host))
        for t in sent:
            o = outcomes[t.idx]
            if _wants(t, "SUCCESS") and not o.remote_dsn:
                local = o.host == "local"
                success.append(Entry(t.idx, "delivered" if local else "relayed", o.status, _diag(o),
                                     None if local else o.host))
    return Plan(
        outcomes=outcomes,
        sent=tuple(t.idx for t in sent),
        failed=tuple(t.idx for t in failed),
        deferred=tuple(t.idx for t in deferred),
        next_attempt=schedule.next_attempt(record.created, now, record.attempts) if deferred else None,
        last_error=str(outcomes[deferred[0].idx]) if deferred else None,
        failure=tuple(failure), delay=tuple(delay), success=tuple(success),
        delay_notified=delay_now,
    )
