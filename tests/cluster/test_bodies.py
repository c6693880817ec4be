"""Bodies shared by several messages (copies of one delivery, COPY) against a real PostgreSQL (tests/pgcluster.py):
the last expunge deletes the body even when two nodes expunge the last two messages at the same moment."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from courrier.cluster.mailstore import PgMailStore, drop_bodies
from courrier.cluster.pg import migrate
from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)


@pytest.fixture
def dsn(pg_cluster):  # noqa: F811
    d = pg_cluster.new_database()
    migrate(d)
    return d


def _bodies(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT COUNT(*) FROM mail_bodies").fetchone()[0]


def test_two_nodes_expunging_the_last_two_messages_of_a_body_delete_it(dsn):
    """Node 2's expunge of one copy has deleted its message and looked at the body (the other copy still there) but
    not committed; node 1 expunges the other copy meanwhile. Before the body lock each saw the other's message and
    both kept the body; now node 1 waits for node 2's commit, then sees both gone and deletes it."""
    a = PgMailStore(dsn, node="n1")
    inbox = a.folder_for("gus@example.test", None)
    other = a.folder_for("gus@example.test", "Archive")
    a.deliver_sync([(inbox, b"X-Copy: 1\n"), (other, b"X-Copy: 2\n")],
                   lambda: iter([b"Subject: shared\r\n\r\nbody\r\n"]))
    assert _bodies(dsn) == 1
    [m1] = a.index.sync(inbox).messages
    with psycopg.connect(dsn) as node2:  # node 2's expunge of the Archive copy, held open before its commit
        with node2.transaction():
            fid = node2.execute("SELECT id FROM mail_folders WHERE account=%s AND name=%s FOR UPDATE",
                                other).fetchone()[0]
            [body] = node2.execute("DELETE FROM mail_messages WHERE folder=%s RETURNING body_id", (fid,)).fetchone()
            drop_bodies(node2, [body])  # the inbox copy is still there: kept for now
            done = threading.Event()
            t = threading.Thread(target=lambda: (a.index.expunge(inbox, [m1.uid]), done.set()))
            t.start()
            time.sleep(0.3)
            assert not done.is_set()  # node 1 waits for the body's lock
        t.join(5)
        assert done.is_set()
    assert _bodies(dsn) == 0
    a.close()


def test_concurrent_expunges_of_copies_on_two_nodes_leave_no_body(dsn):
    """The same race as it happens: two nodes, two copies each round, expunged at once (10 rounds)."""
    a, b = PgMailStore(dsn, node="n1"), PgMailStore(dsn, node="n2")
    inbox = a.folder_for("hal@example.test", None)
    other = a.folder_for("hal@example.test", "Archive")
    for i in range(10):
        a.deliver_sync([(inbox, b"X-Copy: 1\n"), (other, b"X-Copy: 2\n")],
                       lambda i=i: iter([b"Subject: %d\r\n\r\nbody\r\n" % i]))
        u1 = a.index.sync(inbox).messages[-1].uid
        u2 = b.index.sync(other).messages[-1].uid
        gate = threading.Barrier(2)
        ts = [threading.Thread(target=lambda s=s, f=f, u=u, g=gate: (g.wait(), s.index.expunge(f, [u])))
              for s, f, u in ((a, inbox, u1), (b, other, u2))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert _bodies(dsn) == 0
    a.close()
    b.close()
