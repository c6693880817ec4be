"""The queue's retry and bounce rules, one outcome at a time: the pure plan on plain data, then the runner carrying a
plan out with a scripted transport (the network is the only part replaced) over the real spool and SQLite — maddy's
``TestQueueDelivery_TemporaryFail_Partial`` and chasquid's ``TestDSNOnTimeout``."""

from __future__ import annotations

import time

from courrier.delivery.loops import MAX_HOPS
from courrier.delivery.outcome import Outcome
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import parse_address
from courrier.queue.plan import NO_OUTCOME, Record, Target, before_delivery, plan
from courrier.queue.runner import Queue
from courrier.queue.schedule import Schedule
from courrier.queue.spool import Spool
from courrier.queue.store import SQLiteQueueStore
from courrier.smtp.replies import Reply

S = Schedule(retry_first=300, retry_max=4 * 3600, max_lifetime=5 * 86400, delay_notice=4 * 3600)
T0 = 1_000_000.0
SENT = Outcome(Reply(250, "2.0.0", "Ok"), host="mx.b.test", address="192.0.2.1:25")
LOCAL = Outcome(Reply(250, "2.0.0", "delivered to mailbox"), host="local")
TEMP = Outcome(Reply(451, "4.2.0", "greylisted"), host="mx.b.test")
PERM = Outcome(Reply(550, "5.1.1", "no such user"), host="mx.b.test")


def rec(*targets: Target, age: float = 0.0, **kw) -> tuple[Record, float]:
    return Record(created=T0, pending=targets, **kw), T0 + age


def t(idx: int, *notify: str) -> Target:
    return Target(idx, f"r{idx}@b.test", notify)


# ------------------------------------------------------------------ the plan alone


def test_success_finishes_without_notice():
    r, now = rec(t(0), t(1))
    p = plan(r, {0: SENT, 1: LOCAL}, now, S)
    assert (p.sent, p.failed, p.deferred) == ((0, 1), (), ())
    assert p.finished and p.next_attempt is None and p.last_error is None and p.notices == []


def test_temporary_failure_is_retried_on_the_back_off():
    r, now = rec(t(0), age=60, attempts=2)
    p = plan(r, {0: TEMP}, now, S)
    assert p.deferred == (0,) and not p.finished
    assert p.next_attempt == now + 300 * 4  # third failure: retry_first doubled twice
    assert p.last_error == "451 4.2.0 greylisted" and p.notices == [] and not p.delay_notified


def test_retry_never_later_than_expiry():
    r, now = rec(t(0), age=5 * 86400 - 10, attempts=9)
    assert plan(r, {0: TEMP}, now, S).next_attempt == T0 + 5 * 86400


def test_permanent_failure_bounces():
    r, now = rec(t(0))
    p = plan(r, {0: PERM}, now, S)
    assert p.failed == (0,) and p.finished and p.next_attempt is None
    [entry] = p.failure
    assert (entry.idx, entry.action, entry.status, entry.diagnostic, entry.remote_mta) == \
        (0, "failed", "5.1.1", "550 5.1.1 no such user", "mx.b.test")
    assert p.notices == [p.failure]


def test_partial_sent_failed_deferred():
    r, now = rec(t(0), t(1), t(2), t(3))
    p = plan(r, {0: SENT, 1: PERM, 2: TEMP, 3: PERM}, now, S)
    assert (p.sent, p.failed, p.deferred) == ((0,), (1, 3), (2,))
    assert not p.finished and p.next_attempt == now + 300
    assert [e.idx for e in p.failure] == [1, 3] and p.delay == () and p.success == ()
    assert dict(p.outcomes) == {0: SENT, 1: PERM, 2: TEMP, 3: PERM}


def test_a_recipient_the_transport_forgot_is_deferred():
    r, now = rec(t(0), t(1))
    p = plan(r, {0: SENT}, now, S)
    assert p.deferred == (1,) and p.outcomes[1] == NO_OUTCOME and p.last_error == "451 4.3.0 no outcome from transport"


def test_expiry_fails_everyone_with_4_4_7():
    r, now = rec(t(0), t(1, "NEVER"), age=5 * 86400, last_error="451 4.4.1 connect to mx: refused")
    o = before_delivery(r, hops=1, now=now, schedule=S)
    assert o is not None and (o.code, o.enhanced, o.permanent, o.host) == (554, "4.4.7", True, "queue")
    assert o.text == "message expired after 5d in the queue; last error: 451 4.4.1 connect to mx: refused"
    p = plan(r, {0: o, 1: o}, now, S)
    assert p.failed == (0, 1) and p.finished
    assert [(e.idx, e.status) for e in p.failure] == [(0, "4.4.7")]  # NOTIFY=NEVER is not listed
    assert before_delivery(rec(t(0), age=5 * 86400 - 1)[0], 1, T0 + 5 * 86400 - 1, S) is None


def test_loop_fails_with_5_4_6():
    r, now = rec(t(0))
    assert before_delivery(r, MAX_HOPS, now, S) is None
    o = before_delivery(r, MAX_HOPS + 1, now, S)
    assert o is not None and (o.code, o.enhanced, o.permanent) == (554, "5.4.6", True)
    assert plan(r, {0: o}, now, S).failure[0].status == "5.4.6"


def test_delay_notice_once():
    r, now = rec(t(0), t(1, "FAILURE"), t(2, "DELAY", "FAILURE"), age=4 * 3600)
    p = plan(r, {0: TEMP, 1: TEMP, 2: TEMP}, now, S)
    assert p.delay_notified and [(e.idx, e.action, e.status) for e in p.delay] == [(0, "delayed", "4.2.0"),
                                                                                  (2, "delayed", "4.2.0")]
    r2, _ = rec(t(0), age=4 * 3600, delay_notified=True)
    again = plan(r2, {0: TEMP}, now + 600, S)
    assert again.delay == () and not again.delay_notified
    early, now = rec(t(0), age=4 * 3600 - 1)
    assert plan(early, {0: TEMP}, now, S).delay == ()


def test_delay_notice_remembered_even_when_nobody_wants_it():
    r, now = rec(t(0, "NEVER"), age=5 * 3600)
    p = plan(r, {0: TEMP}, now, S)
    assert p.delay == () and p.delay_notified


def test_success_report_on_request():
    relayed_dsn = Outcome(Reply(250, "2.0.0", "Ok"), host="mx.c.test", remote_dsn=True)
    r, now = rec(t(0, "SUCCESS"), t(1, "SUCCESS", "FAILURE"), t(2), t(3, "SUCCESS"))
    p = plan(r, {0: LOCAL, 1: SENT, 2: SENT, 3: relayed_dsn}, now, S)
    assert [(e.idx, e.action, e.status, e.remote_mta) for e in p.success] == [
        (0, "delivered", "2.0.0", None),  # RFC 3461 §5.2.3
        (1, "relayed", "2.0.0", "mx.b.test"),  # §5.2.2; 3 took our NOTIFY and reports itself (§5.2.1)
    ]
    assert p.success[0].diagnostic == "250 2.0.0 delivered to mailbox"


def test_notices_in_order_failure_delay_success():
    r, now = rec(t(0, "SUCCESS"), t(1), t(2), age=4 * 3600)
    p = plan(r, {0: LOCAL, 1: PERM, 2: TEMP}, now, S)
    assert [n[0].action for n in p.notices] == ["failed", "delayed", "delivered"]


def test_null_sender_gets_nothing():
    r, now = rec(t(0, "SUCCESS"), t(1), t(2), age=4 * 3600, reports=False)
    p = plan(r, {0: LOCAL, 1: PERM, 2: TEMP}, now, S)
    assert p.notices == [] and not p.delay_notified and p.deferred == (2,)


# ------------------------------------------------------------------ the runner carrying a plan out


class Scripted:
    """A transport that answers from a script, one dict of outcomes by address per pass."""

    def __init__(self, *passes: dict[str, Outcome]) -> None:
        self.passes = list(passes)
        self.seen: list[list[str]] = []

    async def deliver(self, env, message, rcpts, on_attempt):
        answers = self.passes.pop(0)
        self.seen.append([str(r.address) for _, r in rcpts])
        for _, r in rcpts:
            on_attempt([str(r.address)], answers[str(r.address)])
        return {i: answers[str(r.address)] for i, r in rcpts}


MESSAGE = b"From: a@a.test\r\nSubject: plan\r\n\r\nbody\r\n"


def make(tmp_path, transport, schedule=S):
    return Queue(spool=Spool(tmp_path / "queue"), store=SQLiteQueueStore(tmp_path / "c.db"), transport=transport,
                 schedule=schedule, hostname="mx.a.test")


async def test_runner_partial_then_retry(tmp_path):
    tr = Scripted({"x@b.test": SENT, "y@b.test": TEMP, "z@b.test": PERM}, {"y@b.test": SENT})
    q = make(tmp_path, tr)
    env = Envelope(queue_id="P1", mail_from=parse_address("a@a.test"), received_at=time.time(),
                   rcpts=[Recipient(parse_address(a)) for a in ("x@b.test", "y@b.test", "z@b.test")])
    await q.enqueue(env, [MESSAGE])
    await q._process("P1")
    row = q.store.get("P1")
    assert row is not None and [s for _, _, s in row.rcpts] == ["sent", "pending", "failed"]
    assert row.attempts == 1 and row.last_error == "451 4.2.0 greylisted" and row.next_attempt > time.time() + 250
    bounces = [r for r in q.store.all() if r.qid != "P1"]
    assert [(b.sender, b.pending) for b in bounces] == [("", ["a@a.test"])]  # the failure report for z, spooled
    await q._process("P1")
    assert tr.seen == [["x@b.test", "y@b.test", "z@b.test"], ["y@b.test"]]  # only the deferred one again
    assert q.store.get("P1") is None and not q.spool.path("P1").exists()
    assert [h.result for h in q.store.history("P1")] == ["sent", "deferred", "failed", "sent"]
    await q.stop()


async def test_runner_expired_message_bounces_without_an_attempt(tmp_path):
    tr = Scripted()
    q = make(tmp_path, tr, Schedule(max_lifetime=60))
    env = Envelope(queue_id="E1", mail_from=parse_address("a@a.test"), received_at=time.time() - 120,
                   rcpts=[Recipient(parse_address("y@b.test"))])
    await q.enqueue(env, [MESSAGE])
    await q._process("E1")
    assert tr.seen == [] and q.store.get("E1") is None
    [h] = q.store.history("E1")
    assert (h.result, h.code, h.enhanced, h.host) == ("failed", 554, "4.4.7", "queue")
    [dsn] = q.store.all()
    assert dsn.sender == "" and dsn.pending == ["a@a.test"]
    await q.stop()
