"""Test support: free ports, generated configs, and a real ``courrier serve`` subprocess.

Every e2e test runs the real program, as a user would, and talks to it with clients other people wrote.
"""

from __future__ import annotations

import email
import email.message
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "managesieve", "http")
ENV = {**os.environ, "COURRIER_ARGON2_PROFILE": "cheapest", "PYTHONUNBUFFERED": "1"}
COURRIER = [sys.executable, "-m", "courrier"]
STORES = ("local", "postgresql")
# The store of the non-capture servers a test makes: set per module by the ``server_store`` fixture (tests/conftest.py), which
# runs every test that makes one once per store (docs/cluster.md, "Tests"); "made" counts the PostgreSQL servers.
CURRENT = {"store": "local", "made": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, top: dict[str, Any], sections: dict[str, dict[str, Any]]) -> Path:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, table in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(*args: str, input: str | None = None, check: bool = True, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*COURRIER, *args], input=input, capture_output=True, text=True, env=ENV, cwd=cwd,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"courrier {' '.join(args)} → {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def wait_for_listeners(proc: subprocess.Popen[str], ports: dict[str, int], timeout: float,
                       log: Callable[[], str]) -> None:
    """Until every listener in ``ports`` accepts a connection; AssertionError (with the server log) when the
    process exits first or ``timeout`` passes."""
    deadline = time.time() + timeout
    pending = set(ports)
    while pending and time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"courrier serve exited {proc.returncode}:\n{log()}")
        for name in list(pending):
            try:
                with socket.create_connection(("127.0.0.1", ports[name]), timeout=0.5):
                    pending.discard(name)
            except OSError:
                pass
        if pending:
            time.sleep(0.05)
    if pending:
        raise AssertionError(f"listeners {pending} never came up:\n{log()}")


class Server:
    """A ``courrier serve`` subprocess with its own data dir and free ports.

    ``listeners`` names the listeners to enable (others are disabled); ``ports[name]`` gives each one's port.
    """

    def __init__(self, tmp: Path, *, listeners: tuple[str, ...] = ("smtp",), domains: tuple[str, ...] = ("example.test",),
                 hostname: str = "mx.example.test", capture: bool = False, top: dict[str, Any] | None = None,
                 sections: dict[str, dict[str, Any]] | None = None, serve_args: tuple[str, ...] = (),
                 store: str | None = None) -> None:
        self.serve_args = serve_args  # extra `courrier serve` flags, e.g. ("--capture",)
        self.dir = tmp
        self.ports = {name: free_port() for name in listeners}
        listen = {name: (f"127.0.0.1:{self.ports[name]}" if name in self.ports else "") for name in LISTENERS}
        sec: dict[str, dict[str, Any]] = {"listen": listen, "auth": {"checks": False}}
        own = (sections or {}).get("store")  # a test that names its store itself (tests/cluster, test_94)
        self.store = own.get("backend", "local") if own else (
            "local" if capture or "--capture" in serve_args else store or CURRENT["store"])
        self.dsn: str | None = own.get("dsn") if own else None
        if self.store == "postgresql" and not own:
            from tests.pgcluster import shared

            self.dsn = shared().new_database()
            sec["store"] = {"backend": "postgresql", "dsn": self.dsn, "node": f"n{free_port()}"}
            CURRENT["made"] += 1
        for k, v in (sections or {}).items():
            sec[k] = {**sec.get(k, {}), **v}
        t = {"hostname": hostname, "domains": list(domains), "data_dir": "data", **(top or {})}
        if capture:
            t["mode"] = "capture"
        self.config = write_config(tmp / "courrier.toml", t, sec)
        self.data = tmp / "data"
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = tmp / "serve.log"

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--config", str(self.config), **kw)

    def add_user(self, address: str, password: str = "secret", *extra: str) -> None:
        self.cli("user", "add", address, "--password-stdin", *extra, input=password + "\n")

    def start(self, timeout: float = 20) -> Server:
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*COURRIER, "serve", "--config", str(self.config), *self.serve_args],
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT, env=ENV, text=True)
        try:
            wait_for_listeners(self.proc, self.ports, timeout, self.log)
        except AssertionError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 5.0) -> str:
        """The log once it holds ``text``: the server writes its log from a thread, in batches (courrier/log.py),
        so a line follows the answer it goes with by a few milliseconds. AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if text in log:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never reached the log:\n{log[-3000:]}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def maildir(self, address: str) -> Path:
        """The account's Maildir (local store). A test about what a protocol stored reads :meth:`stored` instead,
        which asks whichever store the server has."""
        if self.store != "local":
            raise AssertionError(f"maildir({address}): this server keeps mail in {self.store}; read it with "
                                 "stored() (or mark the test local_store with the reason)")
        local, _, domain = address.partition("@")
        return self.data / "mail" / domain / local

    @contextmanager
    def accounts(self) -> Iterator[Any]:
        """The store's accounts, through the library the `courrier user` commands use (no CLI start-up per account)."""
        if self.store == "postgresql":
            from courrier.cluster.accounts import PgAccounts
            from courrier.cluster.pg import migrate

            migrate(self.dsn or "")
            pg = PgAccounts(self.dsn or "")
            try:
                yield pg
            finally:
                pg.close()
            return
        from courrier.accounts import Accounts

        self.data.mkdir(parents=True, exist_ok=True)
        yield Accounts(self.data / "courrier.db")

    def stored(self, address: str, folder: str = "INBOX") -> list[Stored]:
        """The messages the store holds in one of the account's folders, oldest first, as stored (LF line
        endings): read from the Maildir files (local) or with SQL (postgresql), not through courrier's code."""
        if self.store == "postgresql":
            return _pg_stored(self.dsn or "", address.lower(), folder)
        return _maildir_stored(self.maildir(address), folder)

    def stored_everywhere(self, address: str) -> list[Stored]:
        """:meth:`stored` over every folder of the account."""
        if self.store == "postgresql":
            return _pg_stored(self.dsn or "", address.lower(), None)
        root = self.maildir(address)
        names = [p.name[1:] for p in root.iterdir() if p.name.startswith(".") and p.is_dir()] if root.is_dir() else []
        return [m for name in ("INBOX", *names) for m in _maildir_stored(root, name)]

    def parsed(self, address: str, folder: str = "INBOX") -> list[email.message.Message]:
        """:meth:`stored`, each parsed as ``mailbox.Maildir`` gives them (the stdlib parser, compat32 policy)."""
        return [email.message_from_bytes(m.data) for m in self.stored(address, folder)]

    def wait_stored(self, address: str, n: int, folder: str = "INBOX", timeout: float = 10) -> list[Stored]:
        """:meth:`stored` once it holds at least ``n`` messages (polled with a deadline; fewer when it passes)."""
        deadline = time.time() + timeout
        while True:
            got = self.stored(address, folder)
            if len(got) >= n or time.time() > deadline:
                return got
            time.sleep(0.05)

    def has_folder(self, address: str, folder: str) -> bool:
        """Whether the store holds the folder (a Maildir++ ``.name`` folder with its ``cur``, or a row)."""
        if self.store == "postgresql":
            import psycopg

            with psycopg.connect(self.dsn or "") as c:
                return c.execute("SELECT 1 FROM mail_folders WHERE account=%s AND name=%s",
                                 (address.lower(), folder)).fetchone() is not None
        return (_folder_path(self.maildir(address), folder) / "cur").is_dir()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass(frozen=True)
class Stored:
    """One stored message: its bytes as stored (LF), its system flags (``\\Seen`` …), its name in the store (the
    Maildir file's unique part; the POP3 UIDL base in PostgreSQL)."""

    data: bytes
    flags: frozenset[str]
    name: str


MAILDIR_FLAGS = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "T": "\\Deleted", "D": "\\Draft"}


def _folder_path(root: Path, folder: str) -> Path:
    return root if folder.upper() == "INBOX" else root / f".{folder}"


def _maildir_stored(root: Path, folder: str) -> list[Stored]:
    path = _folder_path(root, folder)
    files = [p for sub in ("new", "cur") if (path / sub).is_dir() for p in (path / sub).iterdir()]
    out = []
    for p in sorted(files, key=lambda p: (int(p.name.split(".", 1)[0]) if p.name.split(".", 1)[0].isdigit() else 0,
                                          p.name)):
        base, _, info = p.name.partition(":2,")
        try:
            data = p.read_bytes()
        except FileNotFoundError:  # renamed (flags) or expunged meanwhile
            continue
        out.append(Stored(data, frozenset(MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS), base))
    return out


def _pg_stored(dsn: str, account: str, folder: str | None) -> list[Stored]:
    """The account's messages in ``folder`` (None: in every folder) by SQL, in UID order."""
    import psycopg

    name = None if folder is None else "INBOX" if folder.upper() == "INBOX" else folder
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT m.prefix || COALESCE((SELECT string_agg(b.data, ''::bytea ORDER BY b.seq) FROM mail_bodies b "
            "WHERE b.id = m.body_id), ''::bytea), m.flags, m.base FROM mail_messages m JOIN mail_folders f "
            "ON f.id = m.folder WHERE f.account = %s AND (%s::text IS NULL OR f.name = %s) ORDER BY f.name, m.uid",
            (account, name, name)).fetchall()
    return [Stored(bytes(data), frozenset(f for f in flags if f.startswith("\\")), base) for data, flags, base in rows]
