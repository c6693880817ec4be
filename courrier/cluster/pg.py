"""PostgreSQL plumbing of the cluster store: connections, schema migrations, and what an outage looks like.

Every store method of the protocols blocks (``mailbox/api.py``, ``queue/api.py``): they run on thread pools, so the
driver is psycopg 3 used synchronously, one connection per thread (docs/cluster.md has the measurement behind the
choice). Each connection sets ``synchronous_commit = on`` itself — a 250 after DATA means the transaction is on the
database's disk whatever the server's default — and ``statement_timeout`` from ``[store] timeout``.

An outage (refused connection, lost connection, timeout) raises :class:`Unavailable`, an ``OSError``: the layers
above already answer an ``OSError`` of the store with a temporary failure (SMTP 451 4.3.0, IMAP ``NO [UNAVAILABLE]``,
POP3 ``-ERR``), so the client keeps its message and tries again. A broken connection is dropped; the next call makes
a new one, so service resumes by itself once the database is back.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg

MIGRATIONS = "courrier.cluster.migrations"
IDLE_CHECK = 1.0  # seconds: a connection unused for longer is checked before use
_MIGRATION_LOCK = 0x636F7572  # pg_advisory_xact_lock key while a node applies migrations ("cour")


_outages = [0]  # moves whenever any connection of this process failed: every other one is checked at its next use


def outage_seen() -> None:
    _outages[0] += 1


class Unavailable(OSError):
    """The database cannot be reached or did not answer in time: a temporary condition."""

    def __init__(self, error: BaseException) -> None:
        text = " ".join(str(error).split())  # libpq's messages span lines: logs and replies take one
        super().__init__(errno.EIO, f"mail database unavailable: {text[:200]}")


def connect(dsn: str, timeout: float, *, autocommit: bool = True) -> psycopg.Connection:
    """A connection with the cluster's session settings; :class:`Unavailable` when the database cannot be reached."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=max(1, int(timeout + 0.999)),
                               options=f"-c synchronous_commit=on -c statement_timeout={int(timeout * 1000)}")
    except psycopg.Error as e:
        raise Unavailable(e) from None


class Pool:
    """One connection per thread (the stores' thread pools), made on first use and again after a failure."""

    def __init__(self, dsn: str, timeout: float) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._local = threading.local()
        self._all: set[psycopg.Connection] = set()
        self._lock = threading.Lock()

    def _conn(self) -> psycopg.Connection:
        """The thread's connection. One idle for a while is checked first (a database restarted meanwhile has
        closed it without our knowing): the command that comes after an outage gets a fresh one, not the error."""
        c: psycopg.Connection | None = getattr(self._local, "conn", None)
        now = time.monotonic()
        if c is not None and not (c.closed or c.broken) and (
                now - self._local.used > IDLE_CHECK or self._local.generation != _outages[0]):
            try:
                c.execute("SELECT 1")
            except psycopg.Error:
                self._drop()
                c = None
        if c is None or c.closed or c.broken:
            c = self._local.conn = connect(self.dsn, self.timeout)
            with self._lock:
                self._all.add(c)
        self._local.used, self._local.generation = now, _outages[0]
        return c

    def _drop(self) -> None:
        outage_seen()
        c = getattr(self._local, "conn", None)
        self._local.conn = None
        if c is not None:
            with self._lock:
                self._all.discard(c)
            try:
                c.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        """A transaction (committed when the block ends without an exception); outages become Unavailable."""
        c = self._conn()
        try:
            with c.transaction():
                yield c
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            self._drop()
            raise Unavailable(e) from None

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection]:
        """The thread's connection in autocommit (single statements); outages become Unavailable."""
        c = self._conn()
        try:
            yield c
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            self._drop()
            raise Unavailable(e) from None

    def close_thread(self) -> None:
        c = getattr(self._local, "conn", None)
        self._local.conn = None
        if c is not None:
            with self._lock:
                self._all.discard(c)
            c.close()

    def close(self) -> None:
        with self._lock:
            conns, self._all = list(self._all), set()
        for c in conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing what may already be gone
                pass


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, SQL) of each numbered file in courrier/cluster/migrations, in order."""
    out = []
    for f in resources.files(MIGRATIONS).iterdir():
        if f.name.endswith(".sql") and f.name[:4].isdigit():
            out.append((int(f.name[:4]), f.name, f.read_text()))
    return sorted(out)


def migrate(dsn: str, timeout: float = 30.0) -> list[str]:
    """Applies the migrations the database has not seen, each in its own transaction, under an advisory lock so
    that nodes starting together apply each file once. Returns the names applied now."""
    done: list[str] = []
    with connect(dsn, max(timeout, 30.0)) as c:
        try:
            c.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                      "applied DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM now()))")
        except psycopg.errors.UniqueViolation:  # another node created it at the same moment
            pass
        for number, name, sql in migration_files():
            with c.transaction():
                c.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                if c.execute("SELECT 1 FROM schema_migrations WHERE version=%s", (number,)).fetchone():
                    continue
                c.execute(sql)  # type: ignore[arg-type]  # our own files, several statements
                c.execute("INSERT INTO schema_migrations(version, name) VALUES (%s, %s)", (number, name))
                done.append(name)
    return done
