"""Support for the operations scenarios (73-78): a system user, a directory every user can reach, an interpreter
that user can run, privileged ports, and a ``courrier`` started the way an administrator starts it.

The suite runs as root, so the privilege drop is tested for real: the user is made with ``useradd --system`` when
missing. A virtualenv under a 0700 home (``/root/.pyenv``) cannot be run by that user — exactly what ``serve``
refuses at start — so the server runs under the system's own Python 3 with the test virtualenv's packages on
``PYTHONPATH`` whenever the user cannot run ``sys.executable`` itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ENV, wait_for_listeners

SYSTEM_USER = "courrier-e2e"
REPO = Path(__file__).resolve().parents[2]


def ensure_system_user(name: str = SYSTEM_USER) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=False, capture_output=True)  # a parallel run may have made it meanwhile
        return pwd.getpwnam(name)


def _user_can_run(python: str, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can reach the interpreter and its standard library (what ``serve`` checks after the drop)."""
    as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "test"]
    ok = subprocess.run([*as_user, "-x", python], capture_output=True).returncode == 0
    stdlib = os.path.dirname(os.__file__)
    return ok and subprocess.run([*as_user, "-r", stdlib, "-a", "-x", stdlib], capture_output=True).returncode == 0


def interpreter_for(user: pwd.struct_passwd) -> tuple[list[str], dict[str, str]]:
    """(command prefix, environment) running ``python -m courrier`` such that ``user`` can run it too."""
    env = {**ENV, "PYTHONPATH": os.pathsep.join([sysconfig.get_paths()["purelib"], str(REPO)])}
    if _user_can_run(sys.executable, user):
        return [sys.executable, "-m", "courrier"], env
    system = shutil.which("python3", path="/usr/bin:/usr/local/bin") or "/usr/bin/python3"
    return [system, "-m", "courrier"], env


def privileged_port() -> int:
    """A free port below 1024 on 127.0.0.1 (only root may bind it)."""
    for port in range(700, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 1024")


@pytest.fixture(name="open_dir")
def open_dir_fixture() -> Iterator[Path]:
    """A directory under /tmp that any user may traverse (pytest's tmp_path is 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix="courrier-ops-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(name="system_user", scope="session")
def system_user_fixture() -> pwd.struct_passwd:
    assert os.geteuid() == 0, "the privilege scenarios run as root (the suite's normal set-up)"
    return ensure_system_user()


def proc_ids(pid: int) -> dict[str, list[int]]:
    """Uid, Gid (real, effective, saved, fs) and Groups of a running process, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            out[key] = [int(x) for x in value.split()]
    return out


def children(pid: int) -> list[int]:
    p = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in p.stdout.split()]


class RootServer:
    """``courrier serve`` started as root with ``user`` set, on the ports given, in a directory the user can reach."""

    def __init__(self, base: Path, user: pwd.struct_passwd, ports: dict[str, int], *,
                 top: dict | None = None, sections: dict | None = None) -> None:
        from tests.support import LISTENERS, write_config

        self.base, self.ports = base, ports
        self.cmd, self.env = interpreter_for(user)
        listen = {n: (f"127.0.0.1:{ports[n]}" if n in ports else "") for n in LISTENERS}
        sec = {"listen": listen, "auth": {"checks": False}, **(sections or {})}
        t = {"user": user.pw_name, "hostname": "mx.example.test", "domains": ["example.test"], "data_dir": "data",
             **(top or {})}
        self.config = write_config(base / "courrier.toml", t, sec)
        self.data = base / "data"
        self.log_path = base / "serve.log"
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*self.cmd, *args, "--config", str(self.config)], input=input, capture_output=True,
                           text=True, env=self.env, cwd=self.base, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"courrier {' '.join(args)} → {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def start(self, timeout: float = 30) -> RootServer:
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*self.cmd, "serve", "--config", str(self.config)], stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env, text=True, cwd=self.base)
        log.close()
        wait_for_listeners(self.proc, self.ports, timeout, self.log)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc
