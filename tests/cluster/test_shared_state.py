"""State the nodes of a cluster share besides mail (migration 0005), against a real PostgreSQL (tests/pgcluster.py):
Sieve scripts and vacation memory, the failed-login counters, the MTA-STS policy cache, the delivery history. Each
"node" is its own store object with its own connections, as two processes would have."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from courrier.auth.gate import AuthGate, Limited
from courrier.auth.limiter import AuthLimiter
from courrier.cluster.history import DeliveryHistory
from courrier.cluster.limits import PgAuthCounters
from courrier.cluster.pg import Pool, migrate
from courrier.cluster.policies import PgPolicyCache
from courrier.cluster.sieve_store import PgSieveStore
from courrier.delivery.outcome import Outcome
from courrier.mail.reply import Reply
from courrier.sieve.script import SieveSyntaxError
from courrier.sieve.store import SieveStoreError
from tests.pgcluster import PgCluster, pg_cluster  # noqa: F401  (the session fixture)

ME = "me@example.test"
SCRIPT = 'require ["fileinto"];\nif header :contains "subject" "list" { fileinto "Lists"; }\n'


@pytest.fixture
def dsn(pg_cluster):  # noqa: F811
    d = pg_cluster.new_database()
    migrate(d)
    return d


def wait(pred, timeout: float = 3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# ---------------------------------------------------------------- Sieve


def test_a_script_put_on_one_node_is_the_active_one_on_the_other(dsn):
    n1, n2 = PgSieveStore(Pool(dsn, 5)), PgSieveStore(Pool(dsn, 5))
    assert n2.active(ME) is None  # cached on node 2 now
    n1.put(ME, "filter", SCRIPT)
    n1.activate(ME, "filter")
    got = wait(lambda: n2.active(ME))  # node 2 looks at sieve_version at most once a second
    assert got.name == "filter" and got.script is not None and got.error is None
    assert [(s.name, s.active, s.size) for s in n2.list(ME.upper())] == [("filter", True, len(SCRIPT))]
    assert n2.get(ME, "filter") == SCRIPT
    n2.activate(ME, "")  # deactivated on node 2: node 1 stops running it
    assert wait(lambda: n1.active(ME) is None)


def test_script_rules_are_the_local_stores(dsn):
    s = PgSieveStore(Pool(dsn, 5))
    with pytest.raises(SieveSyntaxError):
        s.put(ME, "bad", "if true {")
    assert s.list(ME) == []
    s.put(ME, "a", SCRIPT)
    s.put(ME, "b", "keep;")
    s.activate(ME, "a")
    with pytest.raises(SieveStoreError) as e:
        s.activate(ME, "nope")
    assert e.value.code == "NONEXISTENT"
    with pytest.raises(SieveStoreError) as e:
        s.delete(ME, "a")
    assert e.value.code == "ACTIVE"
    with pytest.raises(SieveStoreError) as e:
        s.rename(ME, "b", "a")
    assert e.value.code == "ALREADYEXISTS"
    s.rename(ME, "a", "c")  # the active flag goes along
    s.activate(ME, "b")  # one active script at most
    assert [(x.name, x.active) for x in s.list(ME)] == [("b", True), ("c", False)]
    s.delete(ME, "c")
    s.delete(ME, "b", force=True)
    assert s.list(ME) == []
    assert s.first_error(ME, "v1") and not PgSieveStore(Pool(dsn, 5)).first_error(ME, "v1")


def test_vacation_answers_once_per_sender_whichever_node_delivers(dsn):
    """RFC 5230 §4.2: sixteen deliveries from one sender at once on two nodes: exactly one reply is due."""
    nodes = [PgSieveStore(Pool(dsn, 5)), PgSieveStore(Pool(dsn, 5))]
    answers: list[bool] = []
    start = threading.Barrier(16)

    def deliver(k: int) -> None:
        start.wait()
        answers.append(nodes[k % 2].vacation_due(ME, "Bob@Example.test", "h", 1))

    threads = [threading.Thread(target=deliver, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(True) == 1
    assert nodes[0].vacation_due(ME, "other@example.test", "h", 1)  # another sender: its own reply
    later = time.time() + 86400 + 1
    assert nodes[1].vacation_due(ME, "bob@example.test", "h", 1, now=later)  # after :days, again


# ---------------------------------------------------------------- failed logins


def counters(dsn: str, budget: int) -> PgAuthCounters:
    return PgAuthCounters(Pool(dsn, 5), AuthLimiter(budget))


def test_failures_on_two_nodes_spend_one_budget(dsn):
    n1, n2 = counters(dsn, 4), counters(dsn, 4)
    for k in range(4):
        node = (n1, n2)[k % 2]
        t = node.reserve("192.0.2.7", "bob@example.test")
        assert t is not None, k
        newly = node.settle(t, "failed")
    assert newly == ["client"]  # the fourth failure, on node 2, locked the client for the cluster
    assert n1.reserve("192.0.2.7", "bob@example.test") is None  # node 1 refuses without a check
    assert n1.locked("192.0.2.7") and n2.locked("192.0.2.7")
    assert n1.reserve("192.0.2.8", "bob@example.test") is not None  # another client is not affected


def test_checks_in_flight_on_two_nodes_cannot_pass_the_budget_together(dsn):
    nodes = [counters(dsn, 3), counters(dsn, 3)]
    got: list[object] = []
    start = threading.Barrier(12)

    def attempt(k: int) -> None:
        start.wait()
        got.append(nodes[k % 2].reserve("198.51.100.1", None))

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tickets = [t for t in got if t is not None]
    assert len(tickets) == 3
    for t in tickets:  # right passwords give their slots back
        nodes[0].settle(t, "ok")
    assert nodes[1].reserve("198.51.100.1", None) is not None


def test_an_account_attacked_from_many_clients_on_two_nodes_is_locked_but_not_for_its_known_client(dsn):
    n1, n2 = counters(dsn, 3), counters(dsn, 3)  # an account locks after 3 failing clients (max(2, budget))
    t = n1.reserve("203.0.113.9", "carol@example.test")
    n1.settle(t, "ok")  # carol's own client logged in once
    for k in range(3):
        node = (n1, n2)[k % 2]
        t = node.reserve(f"192.0.2.{k + 1}", "Carol@example.test")
        assert t is not None
        newly = node.settle(t, "failed")
    assert newly == ["account"]
    assert n2.reserve("192.0.2.50", "carol@example.test") is None  # a new client: refused
    assert n2.reserve("203.0.113.9", "carol@example.test") is not None  # the known one still gets checked


def test_malformed_attempts_count_for_the_cluster(dsn):
    n1, n2 = counters(dsn, 2), counters(dsn, 2)
    assert n1.failed("192.0.2.99") == []
    assert n2.failed("192.0.2.99") == ["client"]
    assert n1.reserve("192.0.2.99", None) is None


async def test_the_gate_of_two_nodes_refuses_once_the_budget_is_spent_on_both(dsn):
    """AuthGate.login on two nodes (each its own limiter, the counters shared): 3 wrong passwords spread over
    both, then the right one is refused unchecked on either (the contract's "for the rest of the window")."""
    gates = []
    for _ in range(2):
        limiter = AuthLimiter(3)
        gates.append(AuthGate(limiter, PgAuthCounters(Pool(dsn, 5), limiter)))
    checked: list[str] = []

    def verify(user: str, password: str) -> str | None:
        checked.append(password)
        return user if password == "right" else None

    for k in range(3):
        assert await gates[k % 2].login("192.0.2.5", "bob@example.test", f"wrong{k}", "imap", verify) is None
    for g in gates:
        with pytest.raises(Limited):
            await g.login("192.0.2.5", "bob@example.test", "right", "imap", verify)
        assert g.refused("192.0.2.5", "imap")  # and known to be locked before any SASL exchange
    assert checked == ["wrong0", "wrong1", "wrong2"]  # the right password was never checked
    assert await gates[0].login("192.0.2.6", "bob@example.test", "right", "imap", verify) == "bob@example.test"
    await asyncio.sleep(0)


async def test_the_gate_keeps_its_own_limiter_when_the_database_is_gone():
    pg = PgCluster().start()
    try:
        d = pg.new_database()
        migrate(d)
        limiter = AuthLimiter(2)
        gate = AuthGate(limiter, PgAuthCounters(Pool(d, 2), limiter))
        pg.stop()

        def verify(user: str, password: str) -> str | None:
            return None

        for _ in range(2):  # checked (the node's limiter holds), failures counted locally
            assert await gate.login("192.0.2.1", "x@example.test", "pw", "pop3", verify) is None
        with pytest.raises(Limited):
            await gate.login("192.0.2.1", "x@example.test", "pw", "pop3", verify)
    finally:
        pg.destroy()


# ---------------------------------------------------------------- MTA-STS and the delivery log


def test_an_mta_sts_policy_fetched_by_one_node_is_known_to_the_other(dsn):
    a, b = PgPolicyCache(Pool(dsn, 5)), PgPolicyCache(Pool(dsn, 5))
    text = "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\n"
    now = time.time()
    assert b.get("example.org") is None
    a.put("example.org", "id1", text, now, now + 86400)
    got = b.get("example.org")
    assert got is not None and got.id == "id1" and got.policy.mode == "enforce" and got.policy.mx == ("mx.example.org",)
    a.put("example.org", "id2", text.replace("enforce", "testing"), now, now + 86400)  # a new id replaces it
    got = b.get("example.org")
    assert got is not None and (got.id, got.policy.mode) == ("id2", "testing")


def test_the_delivery_history_of_every_node_is_read_on_any(dsn):
    from courrier.cluster.queue import PgQueueStore

    n1 = PgQueueStore(Pool(dsn, 5), "n1", 20.0)
    n2 = PgQueueStore(Pool(dsn, 5), "n2", 20.0)
    n1.log("Q1", ["carol@b.test"], Outcome(Reply(451, "4.4.1", "no answer"), host="mx.b.test"), "deferred")
    n2.log("Q1", ["carol@b.test"], Outcome(Reply(250, "2.0.0", "ok"), host="mx.b.test"), "sent")
    reader = DeliveryHistory(Pool(dsn, 5), "cli", 20.0)
    assert [(h.result, h.code) for h in reader.history("Q1")] == [("deferred", 451), ("sent", 250)]
    recent = reader.recent(10)
    assert [(r["qid"], r["node"], r["result"]) for r in recent] == [("Q1", "n2", "sent"), ("Q1", "n1", "deferred")]


def test_migrate_copies_scripts_vacation_memory_and_mta_sts_policies(dsn, tmp_path):
    """`courrier migrate` (copy_local): a local data dir's Sieve state and MTA-STS cache reach the cluster, so the
    nodes started on the copy run the same scripts and answer no sender twice."""
    from courrier.cli.migrate import copy_local
    from courrier.delivery.tlspolicy import PolicyCache
    from courrier.sieve.store import SieveStore

    local = SieveStore(tmp_path / "courrier.db")
    local.put(ME, "filter", SCRIPT)
    local.put(ME, "spare", "keep;")
    local.activate(ME, "filter")
    assert local.vacation_due(ME, "bob@example.test", "h", 7)
    now = time.time()
    PolicyCache(tmp_path / "courrier.db").put("example.org", "id9", "version: STSv1\nmode: enforce\n"
                                              "mx: mx.example.org\nmax_age: 86400\n", now, now + 86400)
    copied = copy_local(tmp_path, dsn)
    assert copied.scripts == 2
    node = PgSieveStore(Pool(dsn, 5))
    active = node.active(ME)
    assert active is not None and active.name == "filter" and active.script is not None
    assert [s.name for s in node.list(ME)] == ["filter", "spare"]
    assert not node.vacation_due(ME, "bob@example.test", "h", 7)  # answered before the move: not again
    got = PgPolicyCache(Pool(dsn, 5)).get("example.org")
    assert got is not None and got.id == "id9" and got.policy.mode == "enforce"
