"""Group commit of deliveries (``PgIndex.deliver_one``) against a real PostgreSQL: deliveries arriving together from
many threads of a node go in a few statements, each keeping its own header lines, body and a UID of its own, with
UIDs dense and ascending; two nodes doing it into one folder still never reorder UIDs."""

from __future__ import annotations

import threading

import psycopg
import pytest

from courrier.cluster.mailstore import PgMailStore
from courrier.cluster.pg import migrate
from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)


@pytest.fixture
def dsn(pg_cluster):  # noqa: F811
    d = pg_cluster.new_database()
    migrate(d)
    return d


def test_concurrent_deliveries_are_grouped_and_each_keeps_its_own_bytes_and_uid(dsn):
    a, b = PgMailStore(dsn, node="a", pool_size=16), PgMailStore(dsn, node="b", pool_size=16)
    inbox = a.folder_for("ida@example.test", None)
    junk = a.folder_for("ida@example.test", "Junk")  # not made yet: the group makes it
    per, threads = 20, 16

    def write(k: int) -> None:
        store = (a, b)[k % 2]
        for i in range(per):
            folder = junk if i % 5 == 0 else inbox
            store.deliver_sync([(folder, f"X-Who: {k}-{i}\n".encode())],
                               lambda k=k, i=i: iter([f"Subject: {k}-{i}\r\n\r\nbody {k}-{i}\r\n".encode()]))

    ts = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = 0
    modseqs = set()
    for folder in (inbox, junk):
        snap = a.index.sync(folder)
        assert [m.uid for m in snap.messages] == list(range(1, len(snap.messages) + 1))
        for m in snap.messages:
            data = a.index.read(folder, m)
            who = data.split(b"\n", 1)[0].split(b": ")[1]
            assert data == b"X-Who: %s\nSubject: %s\n\nbody %s\n" % (who, who, who)
            assert m.size == len(data) + data.count(b"\n")
            modseqs.add((folder, m.modseq))
        total += len(snap.messages)
    assert total == per * threads
    assert len(modseqs) < total  # some deliveries shared a statement (and so a modification sequence)
    assert a.usage(inbox[0]).messages == total
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT COUNT(DISTINCT id) FROM mail_bodies").fetchone()[0] == total
    a.close()
    b.close()
