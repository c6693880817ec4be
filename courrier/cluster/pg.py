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


def connect(dsn: str, timeout: float, *, autocommit: bool = True, name: str = "") -> psycopg.Connection:
    """A connection with the cluster's session settings; :class:`Unavailable` when the database cannot be reached.
    ``name``: the node's, shown by PostgreSQL as ``application_name`` "courrier <name>" (pg_stat_activity)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=max(1, int(timeout + 0.999)),
                               application_name=f"courrier {name}".strip()[:63],
                               options=f"-c synchronous_commit=on -c statement_timeout={int(timeout * 1000)}")
    except psycopg.Error as e:
        raise Unavailable(e) from None


class PoolExhausted(Unavailable):
    """No connection of the node's pool came free within ``[store] timeout``: a temporary condition too."""


class Pool:
    """The node's connections to the database, at most ``size`` open at once, shared by everything that asks (the
    mail store's threads, the queue's, account lookups); the node's notification connection is apart (node.py).

    A caller takes a connection for one ``conn()``/``tx()`` block and gives it back at its end; a thread already
    holding one gets the same again (nested blocks never wait for a second). When all ``size`` are taken the caller
    waits for one, up to ``timeout`` (then :class:`PoolExhausted`): a flood of sessions queues here, the database
    never sees more than ``size`` connections from a node. A connection broken by an outage is dropped; the next
    caller makes a new one."""

    def __init__(self, dsn: str, timeout: float, size: int = 10, name: str = "") -> None:
        self.dsn = dsn
        self.timeout = timeout
        self.size = max(1, size)
        self.name = name  # the node's name: PostgreSQL's application_name "courrier <name>"
        self._local = threading.local()
        self._idle: list[psycopg.Connection] = []
        self._open = 0  # connections made and not closed (idle or taken)
        self._all: set[psycopg.Connection] = set()
        self._meta: dict[int, tuple[float, int]] = {}  # id(conn) → (last use, outage generation seen)
        self._cond = threading.Condition()
        self.peak = 0  # the most ever open at once (tests, status)

    def setup(self, c: psycopg.Connection) -> None:
        """Called once on each new connection (a subclass registers its adapters here)."""

    def _take(self) -> psycopg.Connection:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                while self._idle:
                    c = self._idle.pop()
                    if not (c.closed or c.broken):
                        break
                    self._forget(c)
                else:
                    c = None
                if c is not None:
                    break
                if self._open < self.size:
                    self._open += 1
                    self.peak = max(self.peak, self._open)
                    c = None
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PoolExhausted(TimeoutError(f"all {self.size} connections of the pool busy ([store] "
                                                     "pool_size)"))
                self._cond.wait(left)
        if c is None:
            try:
                c = connect(self.dsn, self.timeout, name=self.name)
                self.setup(c)
            except BaseException:
                with self._cond:
                    self._open -= 1
                    self._cond.notify()
                raise
            with self._cond:
                self._all.add(c)
            self._meta[id(c)] = (time.monotonic(), _outages[0])
            return c
        used, generation = self._meta.get(id(c), (0.0, -1))
        now = time.monotonic()
        if now - used > IDLE_CHECK or generation != _outages[0]:
            # idle for a while, or an outage seen meanwhile: a database restarted has closed it without our knowing,
            # so the command after an outage gets a fresh connection, not the error
            try:
                c.execute("SELECT 1")
            except psycopg.Error:
                self._discard(c)
                return self._take()
        return c

    def _forget(self, c: psycopg.Connection) -> None:
        """(under _cond) a connection closed or broken: no longer counted."""
        self._open -= 1
        self._all.discard(c)
        self._meta.pop(id(c), None)
        self._cond.notify()

    def _discard(self, c: psycopg.Connection) -> None:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - already broken
            pass
        with self._cond:
            self._forget(c)

    def _give(self, c: psycopg.Connection) -> None:
        if c.closed or c.broken:
            self._discard(c)
            return
        self._meta[id(c)] = (time.monotonic(), _outages[0])
        with self._cond:
            self._idle.append(c)
            self._cond.notify()

    @contextmanager
    def _hold(self) -> Iterator[psycopg.Connection]:
        held = getattr(self._local, "held", None)
        if held is not None:  # nested in a block of this thread: the same connection
            self._local.depth += 1
            try:
                yield held
            finally:
                self._local.depth -= 1
            return
        c = self._take()
        self._local.held, self._local.depth = c, 1
        try:
            yield c
        finally:
            self._local.held = None
            self._give(c)

    def _failed(self, c: psycopg.Connection) -> None:
        outage_seen()
        try:
            c.close()  # _give drops it when the outermost block ends
        except Exception:  # noqa: BLE001 - already broken
            pass

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        """A transaction (committed when the block ends without an exception); outages become Unavailable."""
        with self._hold() as c:
            try:
                with c.transaction():
                    yield c
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                self._failed(c)
                raise Unavailable(e) from None

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit (single statements); outages become Unavailable."""
        with self._hold() as c:
            try:
                yield c
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                self._failed(c)
                raise Unavailable(e) from None

    def close_thread(self) -> None:
        """Nothing is kept per thread any more (connections go back to the pool after each block)."""

    def close(self) -> None:
        """Closes the idle connections and every one made so far (the node is stopping)."""
        with self._cond:
            conns, self._all, self._idle = list(self._all), set(), []
            self._open = 0
            self._meta.clear()
            self._cond.notify_all()
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
