"""A private PostgreSQL for the tests: Debian's binaries, a fresh cluster in a temporary folder, its own port.

``initdb`` in a temporary folder, ``postgres`` listening on 127.0.0.1 at a free port with its unix socket in that
folder, ``fsync`` and ``synchronous_commit`` on (what a 250 after DATA relies on). Started as root (CI containers),
the server runs as the ``postgres`` user the Debian package creates: PostgreSQL refuses to run as root.

``pg_cluster`` (a session fixture in tests/conftest.py) starts one per test session; each test that needs a database
takes a fresh one from ``PgCluster.new_database`` so tests never see each other's rows.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """(preexec_fn, uid, gid) to run the server as ``postgres`` when we are root; (None, None, None) otherwise."""
    if os.geteuid() != 0:
        return None, None, None
    pw = pwd.getpwnam("postgres")

    def drop() -> None:
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return drop, pw.pw_uid, pw.pw_gid


class PgCluster:
    def __init__(self) -> None:
        if not (BIN / "initdb").exists():
            raise AssertionError(f"{BIN}/initdb missing: install Debian's postgresql (Makefile DEB_TEST_PKGS)")
        self.dir = Path(tempfile.mkdtemp(prefix="courrier-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = "courrier"
        self._preexec, uid, gid = _as_postgres()
        if uid is not None:
            os.chown(self.dir, uid, gid)  # type: ignore[arg-type]
        self.log = self.dir / "postgres.log"
        self._n = 0
        self._run(BIN / "initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")  # --no-sync: initdb's own files only; the server fsyncs
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.dir}'\n"
                    "fsync = on\nsynchronous_commit = on\nmax_connections = 200\nshared_buffers = 64MB\n"
                    "log_min_messages = warning\n")

    def _run(self, *args: object) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([str(a) for a in args], capture_output=True, text=True, preexec_fn=self._preexec,
                           cwd=self.dir, timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} → {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> PgCluster:
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Runs ``sql`` with Debian's psql (a client someone else wrote); its output without alignment."""
        p = subprocess.run([str(BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            self.dsn(dbname), "-c", sql], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"psql: {p.stderr}")
        return p.stdout

    def new_database(self) -> str:
        """A fresh, empty database; its DSN."""
        self._n += 1
        name = f"t{os.getpid()}_{self._n}_{int(time.time() * 1000) % 100000}"
        self.psql(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


_shared: PgCluster | None = None


def shared() -> PgCluster:
    """The session's one private PostgreSQL, started on first use and removed at exit."""
    global _shared
    if _shared is None:
        import atexit

        _shared = PgCluster().start()
        atexit.register(_shared.destroy)
    elif not _shared.running:  # a test stopped it (outage scenario) and failed before starting it again
        _shared.start()
    return _shared


@pytest.fixture(scope="session")
def pg_cluster() -> PgCluster:
    return shared()
