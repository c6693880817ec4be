"""Helpers for the access e2e tests: a started server with an account, SMTP delivery, raw IMAP lines."""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from tests.support import Server

USER, PASSWORD = "bob@example.test", "secret"


def deliver(srv: Server, data: bytes, rcpt: str = USER, sender: str = "alice@else.test") -> None:
    """Sends ``data`` (LF or CRLF) to the server's MX listener with smtplib."""
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"]) as c:
        assert c.sendmail(sender, [rcpt], data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) == {}


def server_with_corpus(folder: Path, listeners: tuple[str, ...]) -> Server:
    """A started server with the test account, holding every message of tests/access/messages.py, delivered by SMTP
    (``listeners`` must include "smtp")."""
    from tests.access.messages import ALL

    s = Server(folder, listeners=listeners)
    s.add_user(USER, PASSWORD)
    s.start()
    for data in ALL.values():
        deliver(s, data)
    return s


def maildir_files(path: Path) -> list[Path]:
    return sorted([*(path / "new").iterdir(), *(path / "cur").iterdir()], key=lambda p: p.name)


def insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def imap(srv: Server, login: bool = True, user: str = USER) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    if login:
        c.login(user, PASSWORD)
    return c


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Raw:
    """A plain socket speaking IMAP/POP3 line by line, for what client libraries refuse to send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.f.readline()

    def until(self, prefix: bytes) -> list[bytes]:
        """Lines up to and including the first that starts with ``prefix``."""
        out = []
        while True:
            ln = self.f.readline()
            if not ln:
                raise AssertionError(f"connection closed; got {out!r}")
            out.append(ln)
            if ln.startswith(prefix):
                return out

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def run_mutt(home: Path, imap_port: int, push: str, user: str = USER, timeout: float = 30) -> bytes:
    """Runs mutt non-interactively on a pseudo-terminal (it needs one) with a generated muttrc and ``push``
    keystrokes; returns what it drew. Raises when mutt does not exit in time."""
    import os
    import pty
    import select

    home.mkdir(parents=True, exist_ok=True)
    rc = home / "muttrc"
    rc.write_text(f"""set folder="imap://{user.replace('@', '%40')}@127.0.0.1:{imap_port}/"
set imap_pass="{PASSWORD}"
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set confirmappend=no
set confirmcreate=no
set delete=yes
set quit=yes
set move=no
set wait_key=no
set timeout=1
""")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm", "HOME": str(home)}
    pid, fd = pty.fork()
    if pid == 0:  # the child: become mutt
        os.execvpe("mutt", ["mutt", "-n", "-F", str(rc), "-e", f'push "{push}"'], env)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                out += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    raise AssertionError(f"mutt failed: {out[-2000:]!r}")
                return out
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError(f"mutt did not finish: {out[-2000:]!r}")
    finally:
        os.close(fd)
