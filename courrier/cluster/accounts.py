"""Accounts and aliases in PostgreSQL (``migrations/0002_accounts.sql``): one set of accounts for every node.

``PgAccounts`` is ``courrier/accounts.py:Accounts`` — the same rules, the same caches, the same password hashing —
with its connection swapped for a thin adapter that speaks PostgreSQL under the sqlite3 calls that class makes
(``?`` placeholders, rows read by index or by name, IntegrityError). The cache check reads ``accounts_version``,
which triggers move on every change, where the local store reads SQLite's ``data_version``. During an outage the
caches are kept as they are: RCPT for a known address still answers from memory; what needs the database gets
``Unavailable`` (an OSError: 451 / NO [UNAVAILABLE]).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from courrier.accounts import Accounts, _hasher
from courrier.cluster.pg import Pool, Unavailable


class _Row(tuple):  # type: ignore[type-arg]
    """A row read by index or by column name, as sqlite3.Row."""

    names: dict[str, int]

    def __getitem__(self, k: Any) -> Any:  # type: ignore[override]
        if isinstance(k, str):
            return tuple.__getitem__(self, self.names[k])
        return tuple.__getitem__(self, k)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    names = {d.name: i for i, d in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> _Row:
        r = _Row(values)
        r.names = names
        return r

    return make


class _Conn:
    """The few sqlite3.Connection calls Accounts makes, on a pooled PostgreSQL connection (autocommit)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if sql.strip().upper() == "PRAGMA DATA_VERSION":
            sql = "SELECT version FROM accounts_version"
        with self.pool.conn() as c:
            cur = c.cursor(row_factory=_row_factory)
            try:
                return cur.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
            except psycopg.errors.IntegrityError as e:
                raise sqlite3.IntegrityError(str(e)) from None


class PgAccounts(Accounts):
    def __init__(self, dsn: str, timeout: float = 5.0, pool: Pool | None = None) -> None:  # noqa: D107 - no super()
        self.pool = pool if pool is not None else Pool(dsn, timeout, size=2)  # a node passes its shared pool
        self._local = threading.local()
        self._resolve_cache: dict[str, str | None] = {}
        self._quota_cache: dict[str, int | None] = {}
        self._cache_checked = 0.0
        self._cache_version: int | None = None
        self._ph = _hasher()
        self._adapter = _Conn(self.pool)

    def _conn(self) -> Any:
        return self._adapter

    def _check_caches(self) -> None:
        try:
            super()._check_caches()
        except Unavailable:
            pass  # an outage: keep answering RCPT from what is known

    def _provision(self, addr: str) -> None:
        """Folders are made by the mail store at the first delivery or login (PgMailStore.provision)."""

    def close(self) -> None:
        self.pool.close()
