"""Mail accounts: addresses, argon2id password hashes, aliases and the permission to send as others.

The one door to the ``accounts`` and ``aliases`` tables. Password hashing is deliberately slow (argon2id, RFC 9106
low-memory profile); the server calls :meth:`Accounts.verify` from a thread pool so the event loop never waits on it.
Tests set ``COURRIER_ARGON2_PROFILE=cheapest`` to keep the suite fast.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import argon2
from argon2 import PasswordHasher, profiles

from courrier import db
from courrier.mail.path import Address, AddressError, parse_address


class AccountError(Exception):
    """An account operation that cannot be done (unknown account, duplicate, bad address)."""


@dataclass(frozen=True)
class Account:
    address: str
    is_admin: bool
    send_as_any: bool
    aliases: tuple[str, ...] = ()
    quota: int | None = None  # octets; None: ``[accounts] default_quota`` applies; 0: no limit (courrier/quota.py)


def _hasher() -> PasswordHasher:
    if os.environ.get("COURRIER_ARGON2_PROFILE") == "cheapest":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def normalize(address: str) -> str:
    """Lower-cases and validates ``local@domain``; raises AccountError with a one-line reason."""
    try:
        a = parse_address(address.strip())
    except AddressError as e:
        raise AccountError(f"bad address {address!r}: {e}") from None
    if not a.domain:
        raise AccountError(f"bad address {address!r}: missing @domain")
    return f"{a.local.lower()}@{a.domain.lower()}"


class Accounts:
    """Account store over ``courrier.db``; safe to use from several threads."""

    # A dummy hash verified when the account does not exist, so timing does not reveal which accounts exist.
    _DUMMY: str | None = None

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._local = threading.local()
        self._resolve_cache: dict[str, str | None] = {}
        self._quota_cache: dict[str, int | None] = {}
        self._cache_checked = 0.0
        self._cache_version: int | None = None
        self._ph = _hasher()
        db.connect(db_path).close()  # create + migrate once

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = db.connect(self._path)
        return c

    # ------------------------------------------------------------------ queries

    def get(self, address: str) -> Account | None:
        addr = address.lower()
        row = self._conn().execute("SELECT * FROM accounts WHERE address=?", (addr,)).fetchone()
        if row is None:
            return None
        aliases = tuple(r[0] for r in self._conn().execute(
            "SELECT alias FROM aliases WHERE address=? ORDER BY alias", (addr,)))
        return Account(row["address"], bool(row["is_admin"]), bool(row["send_as_any"]), aliases, row["quota"])

    def list(self) -> list[Account]:
        rows = self._conn().execute("SELECT address FROM accounts ORDER BY address").fetchall()
        return [a for a in (self.get(r[0]) for r in rows) if a]

    # Lookups on the SMTP hot path (every RCPT) are answered from memory. The cache is dropped whenever the database
    # changed — PRAGMA data_version moves when any other connection (a `courrier user` command) commits — which is
    # checked at most every CACHE_CHECK seconds. Why: an SQLite call releases the GIL, and getting it back from the
    # busy disk threads costs far more than the query.
    CACHE_CHECK = 0.5

    def drop_cache(self) -> None:
        """Forgets every cached lookup (SIGHUP: the administrator asked for a fresh look at the database)."""
        self._resolve_cache.clear()
        self._quota_cache.clear()
        self._cache_version = None

    def _check_caches(self) -> None:
        now = time.monotonic()
        if now - self._cache_checked > self.CACHE_CHECK:
            version = self._conn().execute("PRAGMA data_version").fetchone()[0]
            if version != self._cache_version:
                self._resolve_cache.clear()
                self._quota_cache.clear()
                self._cache_version = version
            self._cache_checked = now

    def resolve(self, address: str) -> str | None:
        """The account that receives mail for ``address`` (itself or through an alias), or None."""
        addr = address.lower()
        self._check_caches()
        cache = self._resolve_cache
        try:
            return cache[addr]
        except KeyError:
            pass
        found = self._resolve_uncached(addr)
        if len(cache) > 100_000:
            cache.clear()
        cache[addr] = found
        return found

    def own_quota(self, address: str) -> int | None:
        """The account's own quota in octets (0: no limit), None when it has none; answered from memory like
        ``resolve`` (asked at every RCPT), so ``courrier user quota`` reaches a running server within CACHE_CHECK."""
        addr = address.lower()
        self._check_caches()
        try:
            return self._quota_cache[addr]
        except KeyError:
            pass
        row = self._conn().execute("SELECT quota FROM accounts WHERE address=?", (addr,)).fetchone()
        found = row[0] if row else None
        if len(self._quota_cache) > 100_000:
            self._quota_cache.clear()
        self._quota_cache[addr] = found
        return found

    def _resolve_uncached(self, addr: str) -> str | None:
        c = self._conn()
        if c.execute("SELECT 1 FROM accounts WHERE address=?", (addr,)).fetchone():
            return addr
        row = c.execute("SELECT address FROM aliases WHERE alias=?", (addr,)).fetchone()
        return row[0] if row else None

    def local_mailbox(self, address: Address) -> str | None:
        """The account a local address delivers to — the account itself, an alias, ``user+tag`` → ``user``
        (RFC 5233), ``postmaster`` (RFC 5321 §4.5.1) — or None. The one answer to "where does this land", shared by
        the MX and submission roles and the queue's local route."""
        found = self.resolve(f"{address.local}@{address.domain}".lower())
        if found:
            return found
        base = address.base()
        if base is not address:
            found = self.resolve(f"{base.local}@{base.domain}".lower())
            if found:
                return found
        if address.local.lower() == "postmaster":  # RFC 5321 §4.5.1
            return self.postmaster()
        return None

    def postmaster(self) -> str | None:
        """RFC 5321 §4.5.1: postmaster goes to the first admin account, or else the first account."""
        row = self._conn().execute(
            "SELECT address FROM accounts ORDER BY is_admin DESC, created, address LIMIT 1").fetchone()
        return row[0] if row else None

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM accounts").fetchone()[0]

    # ------------------------------------------------------------------ changes

    def add(self, address: str, password: str, *, is_admin: bool = False, send_as_any: bool = False) -> Account:
        self._resolve_cache.clear()  # this connection's own writes do not move data_version
        addr = normalize(address)
        if not password:
            raise AccountError("empty password")
        h = self._ph.hash(password)
        c = self._conn()
        if c.execute("SELECT 1 FROM aliases WHERE alias=?", (addr,)).fetchone():
            raise AccountError(f"{addr} is already an alias")
        try:
            c.execute("INSERT INTO accounts(address,password,is_admin,send_as_any,created) VALUES (?,?,?,?,?)",
                      (addr, h, int(is_admin), int(send_as_any), time.time()))
        except sqlite3.IntegrityError:
            raise AccountError(f"{addr} already exists") from None
        self._provision(addr)
        return self.get(addr)  # type: ignore[return-value]

    def _provision(self, addr: str) -> None:
        """INBOX, Drafts, Sent, Junk, Trash, Archive, subscribed (mailbox/folders.py); the first login does it when
        the disk refuses now, so the account is made either way."""
        from courrier.mailbox.store import provision_account

        try:
            provision_account(self._path.parent, addr)
        except (OSError, sqlite3.Error, ValueError):
            pass

    def delete(self, address: str) -> None:
        self._resolve_cache.clear()
        self._quota_cache.clear()  # this connection's own writes do not move data_version
        addr = normalize(address)
        if self._conn().execute("DELETE FROM accounts WHERE address=?", (addr,)).rowcount == 0:
            raise AccountError(f"no such account: {addr}")

    def set_password(self, address: str, password: str) -> None:
        addr = normalize(address)
        if not password:
            raise AccountError("empty password")
        cur = self._conn().execute("UPDATE accounts SET password=? WHERE address=?", (self._ph.hash(password), addr))
        if cur.rowcount == 0:
            raise AccountError(f"no such account: {addr}")

    def set_flags(self, address: str, *, is_admin: bool | None = None, send_as_any: bool | None = None) -> None:
        addr = normalize(address)
        if self.get(addr) is None:
            raise AccountError(f"no such account: {addr}")
        if is_admin is not None:
            self._conn().execute("UPDATE accounts SET is_admin=? WHERE address=?", (int(is_admin), addr))
        if send_as_any is not None:
            self._conn().execute("UPDATE accounts SET send_as_any=? WHERE address=?", (int(send_as_any), addr))

    def set_quota(self, address: str, quota: int | None) -> None:
        """The account's own quota (octets, 0: no limit), or None to follow ``[accounts] default_quota``."""
        self._quota_cache.clear()  # this connection's own writes do not move data_version
        addr = normalize(address)
        if quota is not None and quota < 0:
            raise AccountError("a quota cannot be negative")
        if self._conn().execute("UPDATE accounts SET quota=? WHERE address=?", (quota, addr)).rowcount == 0:
            raise AccountError(f"no such account: {addr}")

    def add_alias(self, address: str, alias: str) -> None:
        self._resolve_cache.clear()  # this connection's own writes do not move data_version
        addr, al = normalize(address), normalize(alias)
        c = self._conn()
        if self.get(addr) is None:
            raise AccountError(f"no such account: {addr}")
        if c.execute("SELECT 1 FROM accounts WHERE address=?", (al,)).fetchone():
            raise AccountError(f"{al} is an account")
        try:
            c.execute("INSERT INTO aliases(alias,address) VALUES (?,?)", (al, addr))
        except sqlite3.IntegrityError:
            raise AccountError(f"{al} is already an alias") from None

    def del_alias(self, address: str, alias: str) -> None:
        self._resolve_cache.clear()  # this connection's own writes do not move data_version
        addr, al = normalize(address), normalize(alias)
        if self._conn().execute("DELETE FROM aliases WHERE alias=? AND address=?", (al, addr)).rowcount == 0:
            raise AccountError(f"{al} is not an alias of {addr}")

    # ------------------------------------------------------------------ authentication

    def verify(self, address: str, password: str) -> Account | None:
        """The account when the password is right, else None. Blocking (argon2): call it off the event loop."""
        try:
            addr = normalize(address)
        except AccountError:
            addr = ""
        row = self._conn().execute("SELECT password FROM accounts WHERE address=?", (addr,)).fetchone() if addr else None
        if row is None:
            if Accounts._DUMMY is None:
                Accounts._DUMMY = self._ph.hash("courrier-dummy")
            try:
                self._ph.verify(Accounts._DUMMY, password)
            except argon2.exceptions.VerificationError:
                pass
            return None
        try:
            self._ph.verify(row[0], password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return None
        if self._ph.check_needs_rehash(row[0]):
            self._conn().execute("UPDATE accounts SET password=? WHERE address=?", (self._ph.hash(password), addr))
        return self.get(addr)
