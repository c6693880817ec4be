"""The queue store's interface (courrier/queue/api.py): SQLiteQueueStore satisfies it, the runner and the command go
through it, and what it promises holds when driven through the interface alone (add a second store to ``STORES``)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import courrier
from courrier.delivery.outcome import Outcome
from courrier.queue.api import QueueStore
from courrier.queue.store import SQLiteQueueStore
from courrier.smtp.replies import Reply

PACKAGE = Path(courrier.__file__).parent


def pg_queue_store(path: Path):
    """The cluster's PgQueueStore on a fresh database of the session's private PostgreSQL (tests/pgcluster.py)."""
    from courrier.cluster.pg import Pool, migrate
    from courrier.cluster.queue import PgQueueStore
    from tests.pgcluster import shared

    dsn = shared().new_database()
    migrate(dsn)
    return PgQueueStore(Pool(dsn, 5.0), "test", 30.0)


STORES = [SQLiteQueueStore, pg_queue_store]
# Where a queue store is built: the queue's own wiring (outbound.py), the commands (cli/), the web API's view.
BUILDERS = {"queue/outbound.py", "web/context.py"}


def _shape(fn: object) -> tuple[int, list[str]]:
    ps = list(inspect.signature(fn).parameters.values())
    return (sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in ps),
            [p.name for p in ps if p.kind == p.KEYWORD_ONLY])


@pytest.mark.parametrize("impl", STORES)
def test_the_store_satisfies_the_protocol_with_the_same_signatures(tmp_path, impl):
    store = impl(tmp_path / "c.db")
    assert isinstance(store, QueueStore)
    for name, member in vars(QueueStore).items():
        if name.startswith("_") or not callable(member):
            continue
        assert _shape(member) == _shape(inspect.getattr_static(type(store), name)), name
    store.close()


def test_only_the_wiring_builds_the_sqlite_store():
    """The runner, the scheduler and the rest see ``api.QueueStore``; the implementation is named where it is built."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(PACKAGE))
        if rel == "queue/store.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.ImportFrom) and node.module == "courrier.queue.store" \
                    and rel not in BUILDERS and not rel.startswith("cli/"):
                bad.append(rel)
            elif isinstance(node, ast.Import) and any(a.name == "courrier.queue.store" for a in node.names):
                bad.append(rel)
    assert not bad, f"import courrier.queue.api.QueueStore instead: {bad}"


@pytest.fixture(params=STORES)
def store(request, tmp_path) -> QueueStore:
    s = request.param(tmp_path / "c.db")
    yield s
    s.close()


def test_a_message_from_add_to_remove(store):
    assert store.add("Q1", "a@a.test", 100.0, 42, ["b@b.test", "c@c.test"], next_attempt=100.0)
    assert not store.add("Q1", "a@a.test", 100.0, 42, ["b@b.test"])  # re-adoption after a crash: known already
    row = store.get("Q1")
    assert row is not None and row.sender == "a@a.test" and row.size == 42 and row.attempts == 0
    assert row.pending == ["b@b.test", "c@c.test"] and store.qids() == {"Q1"}

    ok = Outcome(Reply(250, "2.0.0", "queued"), host="mx.b.test", address="192.0.2.1:25", tls="TLSv1.3")
    later = Outcome(Reply(451, "4.3.0", "try later"), host="mx.c.test")
    store.record("Q1", {0: ok, 1: later}, next_attempt=400.0, last_error="451 4.3.0 try later",
                 log_rows=[(["b@b.test"], ok, "sent"), (["c@c.test"], later, "deferred")], delay_notified=True)
    row = store.get("Q1")
    assert row.pending == ["c@c.test"] and row.attempts == 1 and row.next_attempt == 400.0
    assert row.last_error == "451 4.3.0 try later" and row.delay_notified
    assert [(h.recipients, h.result, h.code, h.tls) for h in store.history("Q1")] == [
        ("b@b.test", "sent", 250, "TLSv1.3"), ("c@c.test", "deferred", 451, None)]

    assert store.due(300.0, 10, set()) == ([], 400.0)
    assert store.retry_now("Q1") == 1 and store.due(10**10, 10, set())[0] == ["Q1"]
    assert store.due(10**10, 10, {"Q1"}) == ([], None)  # in flight: not handed out twice
    store.remove("Q1")
    assert store.get("Q1") is None and store.all() == [] and len(store.history("Q1")) == 2  # the log stays


def test_a_failed_record_changes_nothing(store):
    """One pass is stored all or nothing (db.transaction in the SQLite store)."""
    store.add("Q2", "a@a.test", 1.0, 1, ["b@b.test"], next_attempt=5.0)
    bad = Outcome(Reply(250, "2.0.0", None))  # type: ignore[arg-type]  # text is required: fails inside the pass
    with pytest.raises(TypeError):
        store.record("Q2", {0: bad}, next_attempt=9.0, last_error=None,
                     log_rows=[(["b@b.test"], Outcome(Reply(250, "2.0.0", "ok")), "sent")])
    row = store.get("Q2")
    assert row.pending == ["b@b.test"] and row.next_attempt == 5.0 and store.history("Q2") == []


def test_all_is_oldest_first_and_flush_makes_every_message_due(store):
    store.add("NEW", "a@a.test", 20.0, 1, ["b@b.test"], next_attempt=10**11)
    store.add("OLD", "a@a.test", 10.0, 1, ["b@b.test"], next_attempt=10**11)
    assert [r.qid for r in store.all()] == ["OLD", "NEW"]
    assert store.retry_now(None) == 2 and sorted(store.due(10**10, 5, set())[0]) == ["NEW", "OLD"]
