"""A real SpamAssassin spamd for tests (Debian's ``spamassassin`` package), on 127.0.0.1 with network tests off.

Started from temporary directories so that nothing of the machine's configuration or state is read or written:
``--siteconfigpath`` holds a copy of the system's ``*.pre`` plugin loaders (without them spamd loads no Check plugin
and cannot scan) and a ``local.cf`` turning off Bayes, auto-learning and DNS; ``-L`` keeps every test local, ``-x``
leaves per-user configuration out. Started as root, spamd is told to run as ``nobody`` (``-u``), so the temporary
directory is made world-readable.

GTUBE (SpamAssassin's "Generic Test for Unsolicited Bulk Email") scores 1000 on any SpamAssassin: the sure spam.

Usage: ``with Spamd() as spamd: spamd.address`` ("127.0.0.1:PORT"), or the module-scoped ``spamd`` fixture
(import it into a conftest.py: ``from tests.spamd import spamd  # noqa: F401``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

LOCAL_CF = """\
use_bayes 0
bayes_auto_learn 0
dns_available no
skip_rbl_checks 1
"""


class Spamd:
    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        assert self.dir is not None
        return (self.dir / "spamd.log").read_text(errors="replace")

    def start(self, timeout: float = 60.0) -> Spamd:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="courrier-spamd-"))
            site = self.dir / "site"
            site.mkdir()
            for pre in glob.glob("/etc/spamassassin/*.pre"):
                shutil.copy(pre, site)
            (site / "local.cf").write_text(LOCAL_CF)
            for p in [self.dir, site, *site.iterdir()]:
                p.chmod(0o755 if p.is_dir() else 0o644)
            self.port = free_port()
        args = ["spamd", "-L", "-x", "--siteconfigpath", str(self.dir / "site"), "-H", str(self.dir),
                "--listen", self.address, "-s", "stderr", "-m", "1", "--min-children", "1", "--max-spare", "1"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        log = open(self.dir / "spamd.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spamd exited with {self.proc.returncode}:\n{self.log[-2000:]}")
            if self.ping():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"spamd did not answer PING within {timeout:g}s:\n{self.log[-2000:]}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"PING SPAMC/1.5\r\n\r\n")
                return b"PONG" in s.recv(100)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the parent, which stops its children; the port is free again once it returns."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Spamd:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


@pytest.fixture(scope="module")
def spamd() -> Iterator[Spamd]:
    """One real spamd for the test module (starting one takes a second or two)."""
    with Spamd() as s:
        yield s
