"""SQLite access: one file, ``data_dir/courrier.db``, with numbered schema migrations.

Migrations are the files ``courrier/migrations/NNNN_name.sql``, applied in order once each and recorded in
``schema_migrations``. Several processes (the server and a CLI command) may open the database at once: WAL mode and a
busy timeout make that safe.

Private by construction: the database holds password hashes, so its folder is made 0700 and the file is created
0600 before SQLite opens it, whatever the process umask; SQLite gives ``-wal`` and ``-shm`` the mode of the database
file. A database left group- or world-readable by an older version is tightened to 0600 when opened.

Connections are opened in autocommit mode (``isolation_level=None``): a statement alone is its own transaction, and
several statements that must stand or fall together go inside :func:`transaction`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path


def migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) for every migration shipped with the package, in order."""
    out = []
    for entry in resources.files("courrier.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private(path: Path) -> None:
    """Creates ``path``'s folder (0700) and ``path`` itself (0600) if missing; tightens a database file and its
    ``-wal``/``-shm`` companions that are readable by others (made by an older version or by hand)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(path.parent, DIR_MODE)  # mkdir's mode is filtered by the umask; the parents get none at all
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        os.chmod(path, FILE_MODE)
    except FileExistsError:
        pass
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = os.stat(p)
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(p, FILE_MODE)
        except FileNotFoundError:
            pass


def connect(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Opens (creating if needed, private: see the module docstring) and migrates the database."""
    ensure_private(path)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=check_same_thread)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` when the block raises (anything, KeyboardInterrupt included) or
    the COMMIT fails. Leaving the block by ``return``/``continue``/``break`` commits.

    IMMEDIATE takes the write lock at the start, so two processes never both read, then both try to upgrade and one
    gets SQLITE_BUSY without the busy timeout helping (a deferred transaction cannot wait for a lock it would need to
    upgrade). Nesting is refused with RuntimeError before anything is done: SQLite has no nested BEGIN, and a
    savepoint would let an inner block's failure be swallowed while the outer one commits half a change; a function
    that needs a transaction takes the connection of its caller's instead.
    """
    if conn.in_transaction:
        raise RuntimeError("db.transaction: a transaction is already open on this connection (nesting is refused)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)"
    )
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    for version, name, sql in migration_files():
        if version in done:
            continue
        with transaction(conn):
            # re-check under the write lock: another process may have just applied it
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version=?", (version,)).fetchone():
                continue
            for stmt in _statements(sql):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?,?,?)", (version, name, time.time()))


def _statements(sql: str) -> list[str]:
    """Splits a migration into statements (sqlite3.complete_statement knows about triggers and strings)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf)
            buf = ""
    if buf.strip():
        out.append(buf)
    return out
