"""A private Dovecot (Debian ``dovecot-imapd``) for interop tests and the ``imap`` bench scenario.

It serves one Maildir to any login (static passdb, password "secret") on a free loopback port, runs as root with
its own base_dir, and keeps its index files outside the Maildir. Dovecot refuses to act on files owned by uid 0,
so the mail processes run as ``nobody`` and :func:`give_to_nobody` hands the Maildir over first.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def nobody() -> tuple[int, int]:
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def give_to_nobody(path: Path) -> None:
    """chown -R nobody, and let nobody traverse every parent directory (search permission only)."""
    uid, gid = nobody()
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, gid)
    p = path.resolve()
    for parent in p.parents:
        mode = os.stat(parent).st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


class Dovecot:
    def __init__(self, workdir: Path, maildir: Path, *, control_in_maildir: bool = False) -> None:
        self.dir = workdir
        self.maildir = maildir
        # Dovecot's control files (dovecot-uidlist, dovecot-keywords) in the Maildir itself, its default: what
        # another program sharing the Maildir (courrier, mutt) reads keywords from
        self.control_in_maildir = control_in_maildir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        # base_dir holds unix sockets (≤ 108 octets of path): a short directory of its own, whatever the test's
        # temporary path (pytest-xdist adds a popen-gwN level)
        self.run_dir = Path(tempfile.mkdtemp(prefix="dv-", dir="/tmp"))

    def config(self) -> Path:
        uid, gid = nobody()
        d = self.dir
        for sub in ("state", "index", "control", "home"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        os.chmod(self.run_dir, 0o755)
        for sub in ("index", "control", "home"):
            os.chown(d / sub, uid, gid)
        conf = d / "dovecot.conf"
        conf.write_text(f"""
base_dir = {self.run_dir}
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{self.maildir}:INDEX={d}/index{"" if self.control_in_maildir else f":CONTROL={d}/control"}
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap {{
  process_limit = 16
}}
""")
        return conf

    def start(self, timeout: float = 20) -> Dovecot:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        give_to_nobody(self.maildir)
        conf = self.config()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited {self.proc.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"dovecot never listened: {self.log()}")

    def log(self) -> str:
        p = self.dir / "dovecot.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
