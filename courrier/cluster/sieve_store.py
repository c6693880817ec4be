"""Sieve scripts and vacation memory in PostgreSQL (``migrations/0005_shared_state.sql``): one set for the cluster.

``PgSieveStore`` is ``courrier/sieve/store.py:SieveStore`` — the same checks (names, sizes, syntax), the same
compiled-script cache — over the cluster's tables instead of SQLite. A script put over ManageSieve (or ``courrier
sieve put``) on one node filters what every node delivers: each node drops its cache of active scripts when
``sieve_version`` (moved by a trigger on every change) moves, read at most once a second (on the event loop, like the
accounts' cache check: one indexed row). The vacation memory (RFC
5230 §4.2) is one upsert that answers "due" to exactly one delivery per sender and handle within ``:days``, whichever
node makes it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import psycopg

from courrier.cluster.pg import Pool, Unavailable
from courrier.sieve.script import compile_script
from courrier.sieve.store import Active, ScriptInfo, SieveStore, SieveStoreError, check_name


class PgSieveStore(SieveStore):
    LOOKUP_BLOCKS = True  # a version check or a cache miss is a query: never on the loop (an outage would stall it)

    def __init__(self, pool: Pool) -> None:  # noqa: D107 - no super(): no SQLite file here
        self.pool = pool
        self._cache: dict[str, Active | None] = {}
        self._compiled = {}
        self._version = -1
        self._checked = 0.0
        self._lock = threading.Lock()

    # ---------------------------------------------------------- scripts

    def list(self, account: str) -> list[ScriptInfo]:
        with self.pool.conn() as c:
            rows = c.execute("SELECT name, active, octet_length(content) FROM sieve_scripts WHERE account=%s "
                             "ORDER BY name COLLATE \"C\"", (account.lower(),)).fetchall()
        return [ScriptInfo(r[0], bool(r[1]), r[2]) for r in rows]

    def get(self, account: str, name: str) -> str | None:
        with self.pool.conn() as c:
            row = c.execute("SELECT content FROM sieve_scripts WHERE account=%s AND name=%s",
                            (account.lower(), name)).fetchone()
        return None if row is None else row[0]

    def put(self, account: str, name: str, content: str) -> None:
        name = check_name(name)
        self.check_space(account, name, len(content.encode("utf-8")))
        compile_script(content)
        with self.pool.conn() as c:
            c.execute("INSERT INTO sieve_scripts (account, name, content, active, updated) VALUES (%s,%s,%s,false,%s) "
                      "ON CONFLICT (account, name) DO UPDATE SET content=excluded.content, updated=excluded.updated",
                      (account.lower(), name, content, time.time()))
        self._changed()

    def activate(self, account: str, name: str) -> None:
        with self.pool.tx() as c:
            c.execute("SELECT pg_advisory_xact_lock(hashtext('sieve ' || %s))", (account.lower(),))
            if name and not c.execute("SELECT 1 FROM sieve_scripts WHERE account=%s AND name=%s",
                                      (account.lower(), name)).fetchone():
                raise SieveStoreError(f"no script named {name!r}", "NONEXISTENT")
            c.execute("UPDATE sieve_scripts SET active=false WHERE account=%s AND active", (account.lower(),))
            if name:
                c.execute("UPDATE sieve_scripts SET active=true WHERE account=%s AND name=%s", (account.lower(), name))
        self._changed()

    def delete(self, account: str, name: str, *, force: bool = False) -> None:
        with self.pool.tx() as c:
            row = c.execute("SELECT active FROM sieve_scripts WHERE account=%s AND name=%s FOR UPDATE",
                            (account.lower(), name)).fetchone()
            if row is None:
                raise SieveStoreError(f"no script named {name!r}", "NONEXISTENT")
            if row[0] and not force:
                raise SieveStoreError("the active script cannot be deleted", "ACTIVE")
            c.execute("DELETE FROM sieve_scripts WHERE account=%s AND name=%s", (account.lower(), name))
        self._changed()

    def rename(self, account: str, old: str, new: str) -> None:
        new = check_name(new)
        try:
            with self.pool.tx() as c:
                if not c.execute("UPDATE sieve_scripts SET name=%s WHERE account=%s AND name=%s",
                                 (new, account.lower(), old)).rowcount:
                    raise SieveStoreError(f"no script named {old!r}", "NONEXISTENT")
        except psycopg.errors.UniqueViolation:
            raise SieveStoreError(f"a script named {new!r} exists", "ALREADYEXISTS") from None
        self._changed()

    # ---------------------------------------------------------- delivery

    def _check_version(self) -> None:
        """Other nodes' writes are looked for at most once a second (one row read), as the local store looks for
        another process's."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            with self.pool.conn() as c:
                v = c.execute("SELECT version FROM sieve_version").fetchone()[0]
        except Unavailable:
            return  # an outage: the scripts known here still apply; one not known yet makes the delivery wait (4xx)
        if v != self._version:
            self._version = v
            self._changed()

    def active(self, account: str) -> Active | None:
        account = account.lower()
        self._check_version()
        with self._lock:
            if account in self._cache:
                return self._cache[account]
        with self.pool.conn() as c:
            row = c.execute("SELECT name, content FROM sieve_scripts WHERE account=%s AND active",
                            (account,)).fetchone()
        found = None
        if row is not None:
            version, script, error = self._compile(row[1])
            found = Active(row[0], version, script, error)
        with self._lock:
            self._cache[account] = found
        return found

    def vacation_due(self, account: str, sender: str, handle: str, days: int, now: float | None = None) -> bool:
        """RFC 5230 §4.2 across nodes: the upsert writes (and returns a row) only when there was no reply to this
        sender within ``days`` — two nodes delivering at once cannot both answer."""
        now = time.time() if now is None else now
        with self.pool.conn() as c:
            row = c.execute(
                "INSERT INTO sieve_vacation AS v (account, sender, handle, until) VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (account, sender, handle) DO UPDATE SET until = excluded.until WHERE v.until <= %s "
                "RETURNING 1", (account.lower(), sender.lower(), handle, now + days * 86400, now)).fetchone()
            if row is not None:
                c.execute("DELETE FROM sieve_vacation WHERE until < %s", (now - 86400,))
        return row is not None

    def first_error(self, account: str, version: str) -> bool:
        with self.pool.conn() as c:
            cur = c.execute("INSERT INTO sieve_error_reports VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                            (account.lower(), version, time.time()))
            return cur.rowcount == 1


def copy_scripts(local: sqlite3.Connection, c: psycopg.Cursor[Any]) -> int:
    """``courrier migrate``: the local store's scripts (active flags kept), vacation memory and error reports into
    the cluster's tables, in the caller's transaction; how many scripts."""
    rows = local.execute("SELECT account, name, content, active, updated FROM sieve_scripts").fetchall()
    c.executemany("INSERT INTO sieve_scripts (account, name, content, active, updated) VALUES (%s,%s,%s,%s,%s)",
                  [(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows])
    c.executemany("INSERT INTO sieve_vacation (account, sender, handle, until) VALUES (%s,%s,%s,%s)",
                  [tuple(r) for r in local.execute("SELECT account, sender, handle, until FROM sieve_vacation")])
    c.executemany("INSERT INTO sieve_error_reports (account, version, at) VALUES (%s,%s,%s)",
                  [tuple(r) for r in local.execute("SELECT account, version, at FROM sieve_error_reports")])
    return len(rows)
