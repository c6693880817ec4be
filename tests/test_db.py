"""db.transaction: commit, rollback on any exception, nesting refused, the write lock taken at BEGIN."""

import sqlite3

import pytest

from courrier import db


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "courrier.db")
    c.execute("CREATE TABLE t (x INTEGER)")
    yield c
    c.close()


def rows(c: sqlite3.Connection) -> list[int]:
    return [r[0] for r in c.execute("SELECT x FROM t ORDER BY x")]


def test_a_block_that_ends_commits(conn, tmp_path):
    with db.transaction(conn) as c:
        assert c is conn and conn.in_transaction
        c.execute("INSERT INTO t VALUES (1)")
        c.execute("INSERT INTO t VALUES (2)")
    assert not conn.in_transaction
    other = db.connect(tmp_path / "courrier.db")  # another connection sees it: it is committed
    assert rows(other) == [1, 2]
    other.close()


def test_leaving_by_return_commits(conn):
    def add() -> bool:
        with db.transaction(conn) as c:
            c.execute("INSERT INTO t VALUES (3)")
            return True

    assert add() and rows(conn) == [3] and not conn.in_transaction


@pytest.mark.parametrize("exc", [ValueError("boom"), KeyboardInterrupt()])
def test_an_exception_rolls_everything_back_and_propagates(conn, exc):
    with pytest.raises(type(exc)):
        with db.transaction(conn) as c:
            c.execute("INSERT INTO t VALUES (1)")
            raise exc
    assert rows(conn) == [] and not conn.in_transaction


def test_nesting_is_refused_and_the_outer_transaction_rolls_back(conn):
    with pytest.raises(RuntimeError, match="nesting is refused"):
        with db.transaction(conn) as c:
            c.execute("INSERT INTO t VALUES (1)")
            with db.transaction(conn):
                c.execute("INSERT INTO t VALUES (2)")
    assert rows(conn) == [] and not conn.in_transaction


def test_the_write_lock_is_taken_at_begin(conn, tmp_path):
    """IMMEDIATE: a second writer is refused at once, before the first has written anything."""
    other = sqlite3.connect(tmp_path / "courrier.db", timeout=0, isolation_level=None)
    with db.transaction(conn):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
