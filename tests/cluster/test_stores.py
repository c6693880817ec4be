"""The cluster stores against a real PostgreSQL (tests/pgcluster.py): what the local store cannot be asked — two
nodes writing one folder, two nodes working one queue, a database that goes away and comes back."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from courrier.cluster.mailstore import PgMailStore
from courrier.cluster.pg import Pool, Unavailable, migrate, migration_files
from courrier.cluster.queue import PgQueueStore
from courrier.mailbox import flags as F
from tests.pgcluster import PgCluster, pg_cluster  # noqa: F401  (the session fixture)


@pytest.fixture
def dsn(pg_cluster):  # noqa: F811
    d = pg_cluster.new_database()
    migrate(d)
    return d


def test_migrations_apply_once_and_are_recorded(dsn):
    assert migrate(dsn) == []  # a second node starting finds them applied
    with psycopg.connect(dsn) as c:
        applied = c.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert applied == [(n, name) for n, name, _ in migration_files()]  # every file, once (other branches add theirs)
        assert applied[:3] == [(1, "0001_cluster.sql"), (2, "0002_accounts.sql"), (3, "0003_condstore.sql")]
        assert (4, "0004_mailboxid.sql") in applied and (5, "0005_shared_state.sql") in applied
        assert (6, "0006_capture.sql") in applied
        assert c.execute("SHOW synchronous_commit").fetchone()[0] == "on"


def test_two_nodes_delivering_into_one_folder_never_reorder_uids(dsn):
    """Eight writers on two nodes; a reader on a third never sees UID n+1 before n (RFC 3501 §2.3.1.1)."""
    nodes = [PgMailStore(dsn, node=n, pool_size=4) for n in ("n1", "n2", "n3")]
    folder = nodes[0].folder_for("bob@example.test", None)
    per_writer, writers = 25, 8
    seen_gap: list[tuple[int, ...]] = []
    done = threading.Event()

    def write(store: PgMailStore, k: int) -> None:
        for i in range(per_writer):
            store.deliver_sync([(folder, f"X-N: {k}-{i}\n".encode())], lambda: iter([b"Subject: s\r\n\r\nbody\r\n"]))

    def read() -> None:
        while not done.is_set():
            uids = tuple(m.uid for m in nodes[2].index.sync(folder).messages)
            if uids != tuple(range(1, len(uids) + 1)):
                seen_gap.append(uids)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(nodes[k % 2], k)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    snap = nodes[2].index.sync(folder)
    assert [m.uid for m in snap.messages] == list(range(1, per_writer * writers + 1))
    assert snap.uidnext == per_writer * writers + 1 and not seen_gap
    assert nodes[1].usage(folder[0]).messages == per_writer * writers
    for s in nodes:
        s.close()


def test_flags_set_on_one_node_are_seen_by_another(dsn):
    a, b = PgMailStore(dsn, node="a"), PgMailStore(dsn, node="b")
    folder = a.folder_for("carol@example.test", None)
    _, uid = a.index.append(folder, b"Subject: x\n\nx\n")
    before = b.index.sync(folder)
    a.index.store_flags(folder, [(uid, frozenset({F.SEEN}))], "add")
    b.index.store_flags(folder, [(uid, frozenset({F.FLAGGED}))], "add")  # +FLAGS on both: neither undoes the other
    after = b.index.sync(folder)
    assert after.messages[0].flags == {F.SEEN, F.FLAGGED} and after.highestmodseq > before.highestmodseq
    assert a.index.expunge(folder, [uid], only_deleted=True) == []  # no \Deleted: kept
    a.index.store_flags(folder, [(uid, frozenset({F.DELETED}))], "add")
    assert b.index.expunge(folder, [uid], only_deleted=True) == [uid]
    assert a.index.sync(folder).messages == ()
    a.close()
    b.close()


def test_a_lapsed_lease_is_taken_over_by_another_node(dsn):
    a = PgQueueStore(Pool(dsn, 5.0), "a", lease=30.0)
    b = PgQueueStore(Pool(dsn, 5.0), "b", lease=30.0)
    a.add("Q1", "s@a.test", 1.0, 10, ["r@b.test"], next_attempt=100.0)
    assert a.due(200.0, 10, set())[0] == ["Q1"]
    assert b.due(200.0, 10, set())[0] == []  # leased to a until 230
    assert a.renew(220.0) == 1  # a lives: its lease now runs to 250
    assert b.due(240.0, 10, set())[0] == []
    assert b.due(251.0, 10, set())[0] == ["Q1"]  # a stopped renewing (dead): b takes it over
    assert a.due(252.0, 10, set())[0] == []
    assert b.release() == 1  # b stops cleanly: a may take it at once
    assert a.due(253.0, 10, set())[0] == ["Q1"]
    a.remove("Q1")


def test_claims_never_hand_one_message_to_two_nodes(dsn):
    stores = [PgQueueStore(Pool(dsn, 5.0), f"n{i}", lease=30.0) for i in range(4)]
    for i in range(200):
        stores[0].add(f"Q{i:03}", "s@a.test", 1.0, 10, ["r@b.test"], next_attempt=1.0)
    got: list[list[str]] = [[] for _ in stores]

    def claim(k: int) -> None:
        while True:
            ids, _ = stores[k].due(time.time(), 7, set(got[k]))  # its own in flight: excluded, as the runner does
            if not ids:
                return
            got[k] += ids

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [q for g in got for q in g]
    assert sorted(everything) == [f"Q{i:03}" for i in range(200)]  # each exactly once


def test_an_outage_is_a_temporary_error_and_service_resumes():
    pg = PgCluster().start()
    try:
        dsn = pg.new_database()
        migrate(dsn)
        store = PgMailStore(dsn, node="a", timeout=2.0)
        folder = store.folder_for("dan@example.test", None)
        store.index.append(folder, b"Subject: before\n\nx\n")
        pg.stop()
        with pytest.raises(OSError) as e:  # IMAP: NO [UNAVAILABLE]; SMTP: 451 4.3.0
            store.deliver_sync([(folder, b"")], lambda: iter([b"Subject: during\r\n\r\nx\r\n"]))
        assert isinstance(e.value, Unavailable)
        with pytest.raises(OSError):
            store.index.sync(folder)
        pg.start()
        store.deliver_sync([(folder, b"")], lambda: iter([b"Subject: after\r\n\r\nx\r\n"]))
        assert [m.uid for m in store.index.sync(folder).messages] == [1, 2]
        store.close()
    finally:
        pg.destroy()


def test_accounts_are_shared_and_caches_follow_changes_from_other_nodes(dsn):
    """PgAccounts is the local Accounts over PostgreSQL: an account added on one node logs in on another, and a
    deletion there reaches the first node's RCPT cache within Accounts.CACHE_CHECK."""
    from courrier.accounts import AccountError
    from courrier.cluster.accounts import PgAccounts

    a, b = PgAccounts(dsn), PgAccounts(dsn)
    a.add("Bob@Example.test", "pw", is_admin=True)
    a.add_alias("bob@example.test", "robert@example.test")
    assert b.verify("bob@example.test", "pw").aliases == ("robert@example.test",)
    assert b.verify("bob@example.test", "wrong") is None
    assert b.resolve("robert@example.test") == "bob@example.test" and b.postmaster() == "bob@example.test"
    with pytest.raises(AccountError, match="already exists"):
        b.add("bob@example.test", "x")
    a.delete("bob@example.test")
    time.sleep(b.CACHE_CHECK + 0.1)
    assert b.resolve("robert@example.test") is None and b.count() == 0
    a.close()
    b.close()


def test_large_bodies_are_stored_in_chunks_shared_by_copies_and_dropped_with_the_last(dsn):
    """A 3.5 MiB message streams in as 1 MiB rows, read back byte for byte (and its head across a chunk border);
    COPY shares the body; the body goes with the last message that refers to it."""
    from courrier.cluster.mailstore import CHUNK
    from courrier.mailbox.api import crlf_size

    store = PgMailStore(dsn, node="a")
    inbox = store.folder_for("erin@example.test", None)
    line = b"0123456789abcdef" * 4 + b"\r\n"  # 66 octets, CRLF
    body = b"Subject: big\r\n\r\n" + line * (int(3.5 * CHUNK) // len(line))
    pieces = [body[i:i + 65536 + 1] for i in range(0, len(body), 65537)]  # CR and LF split across pieces
    store.deliver_sync([(inbox, b"X-Copy: 1\n")], lambda: iter(pieces))
    lf = b"X-Copy: 1\n" + body.replace(b"\r\n", b"\n")
    [m] = store.index.sync(inbox).messages
    assert m.size == crlf_size(lf) and store.index.read(inbox, m) == lf
    assert store.index.read_head(inbox, m, CHUNK + 100) == lf[:CHUNK + 100]
    assert store.index.header(inbox, m) == b"X-Copy: 1\r\nSubject: big\r\n\r\n"
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT COUNT(*), MAX(length(data)) FROM mail_bodies").fetchone() == (4, CHUNK)
    other = store.create_folder(inbox[0], "Kept")
    _, pairs = store.index.copy(inbox, [m.uid], other)
    store.index.expunge(inbox, [m.uid])
    [kept] = store.index.sync(other).messages
    assert store.index.read(other, kept) == lf  # the copy still has it
    store.delete_folder(inbox[0], "Kept")
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT COUNT(*) FROM mail_bodies").fetchone() == (0,)
    store.close()


def test_condstore_unchangedsince_and_vanished_across_nodes(dsn):
    """RFC 7162: STORE UNCHANGEDSINCE leaves a message changed since alone; VANISHED (EARLIER) names what another
    node expunged or moved away after a mod-sequence."""
    a, b = PgMailStore(dsn, node="a"), PgMailStore(dsn, node="b")
    inbox = a.folder_for("fay@example.test", None)
    uids = [a.index.append(inbox, f"Subject: {i}\n\nx\n".encode())[1] for i in range(4)]
    seen = b.index.sync(inbox).highestmodseq
    a.index.store_flags(inbox, [(uids[0], frozenset({F.SEEN}))], "add")  # changed after b looked
    modified: set[int] = set()
    changed = b.index.store_flags(inbox, [(u, frozenset({F.FLAGGED})) for u in uids[:2]], "add",
                                  unchangedsince=seen, modified=modified)
    assert modified == {uids[0]} and set(changed) == {uids[1]}
    a.index.expunge(inbox, [uids[2]])
    a.index.copy(inbox, [uids[3]], a.create_folder(inbox[0], "Moved"), move=True)
    assert b.index.vanished(inbox, seen) == [uids[2], uids[3]]
    assert b.index.vanished(inbox, b.index.sync(inbox).highestmodseq) == []
    a.close()
    b.close()
