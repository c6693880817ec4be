"""Sieve scripts in the database (migration 0062): per account, named, at most one active (RFC 5804 §1.1), with
the vacation memory (RFC 5230 §4.2) and the record of errors already reported. Used by delivery (the active script,
compiled once per version and cached), by ManageSieve and by ``courrier sieve``.

Thread-safe like ``courrier.accounts``: one SQLite connection per thread. Writes made by another process (the CLI
while the server runs) are seen through ``PRAGMA data_version`` (asked at most once a second), which drops the
cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from courrier import db
from courrier.sieve.interp import SieveRuntimeError
from courrier.sieve.script import MAX_SCRIPT, Script, SieveSyntaxError, compile_script

MAX_SCRIPTS = 32       # per account
MAX_NAME = 128         # characters in a script name


class SieveStoreError(Exception):
    """A refused change; ``code`` is the ManageSieve response code (RFC 5804 §1.3) it maps to, if any."""

    def __init__(self, text: str, code: str = "") -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True)
class ScriptInfo:
    name: str
    active: bool
    size: int


@dataclass(frozen=True)
class Active:
    """The account's active script: its name, text digest (the "version") and the compiled tree."""

    name: str
    version: str
    script: Script | None
    error: str | None = None  # a stored script that no longer compiles (a parser change): reported, not run


def check_name(name: str) -> str:
    """RFC 5804 §1.6: UTF-8 without control characters (nor NUL, CR, LF, U+2028/2029), not empty, bounded."""
    if not name or len(name) > MAX_NAME:
        raise SieveStoreError(f"script name must be 1 to {MAX_NAME} characters")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in "\u2028\u2029":
            raise SieveStoreError("script name holds a control character")
    return unicodedata.normalize("NFC", name)


def version_of(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


class SieveStore:
    # whether ``active`` may wait on a network round trip (the cluster's store): then delivery asks it from a thread,
    # never on the event loop; a local lookup is a memory hit or one SQLite read and is asked in place
    LOOKUP_BLOCKS = False

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._local = threading.local()
        self._cache: dict[str, Active | None] = {}
        self._compiled: dict[str, Script] = {}
        self._version = -1
        self._checked = 0.0
        self._lock = threading.Lock()
        db.connect(db_path).close()  # create + migrate once

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = db.connect(self._path, check_same_thread=True)
        return c

    def _changed(self) -> None:
        with self._lock:
            self._cache.clear()

    # ---------------------------------------------------------- scripts

    def list(self, account: str) -> list[ScriptInfo]:
        rows = self._conn().execute(
            "SELECT name, active, length(CAST(content AS BLOB)) FROM sieve_scripts WHERE account=? ORDER BY name",
            (account.lower(),)).fetchall()
        return [ScriptInfo(r[0], bool(r[1]), r[2]) for r in rows]

    def get(self, account: str, name: str) -> str | None:
        row = self._conn().execute("SELECT content FROM sieve_scripts WHERE account=? AND name=?",
                                   (account.lower(), name)).fetchone()
        return None if row is None else row[0]

    def check_space(self, account: str, name: str, size: int) -> None:
        """RFC 5804 §2.3 HAVESPACE: raises SieveStoreError with QUOTA/MAXSIZE or QUOTA/MAXSCRIPTS."""
        if size > MAX_SCRIPT:
            raise SieveStoreError(f"script larger than {MAX_SCRIPT} octets", "QUOTA/MAXSIZE")
        names = {s.name for s in self.list(account)}
        if name not in names and len(names) >= MAX_SCRIPTS:
            raise SieveStoreError(f"at most {MAX_SCRIPTS} scripts per account", "QUOTA/MAXSCRIPTS")

    def put(self, account: str, name: str, content: str) -> None:
        """Stores (replaces) a script after checking it: SieveSyntaxError with line and reason when it does not
        parse (RFC 5804 §2.6: nothing is stored)."""
        name = check_name(name)
        self.check_space(account, name, len(content.encode("utf-8")))
        compile_script(content)
        c = self._conn()
        with db.transaction(c):
            c.execute("INSERT INTO sieve_scripts (account, name, content, active, updated) VALUES (?,?,?,0,?) "
                      "ON CONFLICT (account, name) DO UPDATE SET content=excluded.content, "
                      "updated=excluded.updated", (account.lower(), name, content, time.time()))
        self._changed()

    def activate(self, account: str, name: str) -> None:
        """RFC 5804 §2.8 SETACTIVE; ``""`` deactivates every script."""
        c = self._conn()
        with db.transaction(c):
            if name and not c.execute("SELECT 1 FROM sieve_scripts WHERE account=? AND name=?",
                                      (account.lower(), name)).fetchone():
                raise SieveStoreError(f"no script named {name!r}", "NONEXISTENT")
            c.execute("UPDATE sieve_scripts SET active=0 WHERE account=? AND active=1", (account.lower(),))
            if name:
                c.execute("UPDATE sieve_scripts SET active=1 WHERE account=? AND name=?", (account.lower(), name))
        self._changed()

    def delete(self, account: str, name: str, *, force: bool = False) -> None:
        """RFC 5804 §2.10 DELETESCRIPT: the active script is refused (ACTIVE) unless ``force`` (the CLI)."""
        c = self._conn()
        with db.transaction(c):
            row = c.execute("SELECT active FROM sieve_scripts WHERE account=? AND name=?",
                            (account.lower(), name)).fetchone()
            if row is None:
                raise SieveStoreError(f"no script named {name!r}", "NONEXISTENT")
            if row[0] and not force:
                raise SieveStoreError("the active script cannot be deleted", "ACTIVE")
            c.execute("DELETE FROM sieve_scripts WHERE account=? AND name=?", (account.lower(), name))
        self._changed()

    def rename(self, account: str, old: str, new: str) -> None:
        """RFC 5804 §2.11 RENAMESCRIPT (the active flag goes along)."""
        new = check_name(new)
        c = self._conn()
        with db.transaction(c):
            if not c.execute("SELECT 1 FROM sieve_scripts WHERE account=? AND name=?",
                             (account.lower(), old)).fetchone():
                raise SieveStoreError(f"no script named {old!r}", "NONEXISTENT")
            if c.execute("SELECT 1 FROM sieve_scripts WHERE account=? AND name=?",
                         (account.lower(), new)).fetchone():
                raise SieveStoreError(f"a script named {new!r} exists", "ALREADYEXISTS")
            c.execute("UPDATE sieve_scripts SET name=? WHERE account=? AND name=?", (new, account.lower(), old))
        self._changed()

    # ---------------------------------------------------------- delivery

    def _check_version(self) -> None:
        """Another process's writes (the CLI) are looked for at most once a second: this process's own drop the
        cache at once (``_changed``), and a query per delivered message would cost more than the script run."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        v = self._conn().execute("PRAGMA data_version").fetchone()[0]
        if v != self._version:
            self._version = v
            self._changed()

    def _compile(self, content: str) -> tuple[str, Script | None, str | None]:
        version = version_of(content)
        script = self._compiled.get(version)
        if script is None:
            try:
                script = compile_script(content)
            except SieveSyntaxError as e:
                return version, None, str(e)
            if len(self._compiled) > 1024:
                self._compiled.clear()
            self._compiled[version] = script
        return version, script, None

    def active(self, account: str) -> Active | None:
        """The account's active script (cached until a change), None without one."""
        account = account.lower()
        self._check_version()
        with self._lock:
            if account in self._cache:
                return self._cache[account]
        row = self._conn().execute("SELECT name, content FROM sieve_scripts WHERE account=? AND active=1",
                                   (account,)).fetchone()
        found = None
        if row is not None:
            version, script, error = self._compile(row[1])
            found = Active(row[0], version, script, error)
        with self._lock:
            self._cache[account] = found
        return found

    def personal(self, account: str, name: str) -> Script | None:
        """RFC 6609 §3.2 ``:personal`` include: another of the account's scripts, compiled (cached by version)."""
        content = self.get(account, name)
        if content is None:
            return None
        _, script, error = self._compile(content)
        if script is None:
            raise SieveRuntimeError(f"included script {name!r}: {error}")
        return script

    def vacation_due(self, account: str, sender: str, handle: str, days: int, now: float | None = None) -> bool:
        """RFC 5230 §4.2: True (and remembered for ``days``) unless this sender got this reply within them."""
        now = time.time() if now is None else now
        c = self._conn()
        with db.transaction(c):
            row = c.execute("SELECT until FROM sieve_vacation WHERE account=? AND sender=? AND handle=?",
                            (account.lower(), sender.lower(), handle)).fetchone()
            if row is not None and row[0] > now:
                return False
            c.execute("INSERT OR REPLACE INTO sieve_vacation VALUES (?,?,?,?)",
                      (account.lower(), sender.lower(), handle, now + days * 86400))
            c.execute("DELETE FROM sieve_vacation WHERE until < ?", (now - 86400,))
        return True

    def first_error(self, account: str, version: str) -> bool:
        """True the first time an error of this script version is reported (one report per version)."""
        cur = self._conn().execute("INSERT OR IGNORE INTO sieve_error_reports VALUES (?,?,?)",
                                   (account.lower(), version, time.time()))
        return cur.rowcount == 1
