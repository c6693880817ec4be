"""Test support: free ports, generated configs, and a real ``courrier serve`` subprocess.

Every e2e test runs the real program, as a user would, and talks to it with clients other people wrote.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "managesieve", "http")
ENV = {**os.environ, "COURRIER_ARGON2_PROFILE": "cheapest", "PYTHONUNBUFFERED": "1"}
COURRIER = [sys.executable, "-m", "courrier"]


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
                 sections: dict[str, dict[str, Any]] | None = None, serve_args: tuple[str, ...] = ()) -> None:
        self.serve_args = serve_args  # extra `courrier serve` flags, e.g. ("--capture",)
        self.dir = tmp
        self.ports = {name: free_port() for name in listeners}
        listen = {name: (f"127.0.0.1:{self.ports[name]}" if name in self.ports else "") for name in LISTENERS}
        sec = {"listen": listen, "auth": {"checks": False}}
        if os.environ.get("COURRIER_TEST_STORE") == "postgresql":  # docs/cluster.md, "Tests" (capture mode too)
            from tests.pgcluster import shared

            sec["store"] = {"backend": "postgresql", "dsn": shared().new_database(), "node": f"n{free_port()}"}
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
        local, _, domain = address.partition("@")
        return self.data / "mail" / domain / local

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
