"""Shared pieces of the benchmark scenarios: peers (smtp-sink, a throwaway Postfix), load (smtp-source), timing.

Every figure is measured in one run, contenders alternating round by round, and reported as medians and ratios.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def smtp_source(port: int, *, sessions: int, messages: int, size: int, rcpt: str = "b@bench.test",
                reuse: bool = False) -> float:
    """Runs Postfix's smtp-source; returns messages/second accepted."""
    args = [SMTP_SOURCE, "-c", "-s", str(sessions), "-m", str(messages), "-l", str(size),
            "-f", "a@x.test", "-t", rcpt]
    if reuse:
        args.append("-d")
    t = time.perf_counter()
    p = subprocess.run([*args, f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {p.stderr.strip()[-300:]}")
    return messages / dt


class Sink:
    """Postfix's smtp-sink: accepts and discards (the protocol-speed reference)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-c", f"127.0.0.1:{self.port}", "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class ThrowawayPostfix:
    """A private Postfix instance delivering bench.test to a Maildir (virtual delivery, uid 65534).

    Own config, queue, data directories and log under a temp dir; smtpd on a loopback port, chroot off (BENCH-NOTES).
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="courrier-bench-postfix-"))
        self.port = free_port()
        conf, queue, data, mail = (self.dir / n for n in ("conf", "queue", "data", "mail"))
        for d in (conf, queue, data, mail):
            d.mkdir()
        os.chown(mail, 65534, 65534)
        shutil.chown(data, "postfix", "postfix")
        os.chmod(self.dir, 0o755)
        shutil.copy("/etc/postfix/master.cf" if os.path.exists("/etc/postfix/master.cf")
                    else "/usr/share/postfix/master.cf.dist", conf / "master.cf")
        master = (conf / "master.cf").read_text().splitlines()
        out = []
        for line in master:
            if line.startswith("smtp ") and " inet " in line:
                line = f"127.0.0.1:{self.port} inet n - n - - smtpd"
            elif line and not line[0].isspace() and not line.startswith("#"):
                parts = line.split()
                if len(parts) > 4 and parts[4] == "y":  # chroot column off
                    parts[4] = "n"
                    line = " ".join(parts)
            out.append(line)
        (conf / "master.cf").write_text("\n".join(out) + "\n")
        (conf / "main.cf").write_text(f"""
compatibility_level = 3.6
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
queue_directory = {queue}
data_directory = {data}
maillog_file = {self.dir}/maillog
maillog_file_prefixes = /tmp, /var
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.test
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = bench.test
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:b/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
default_process_limit = 300
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_recipient_restrictions = permit_mynetworks, reject
""")
        self.env = {**os.environ, "MAIL_CONFIG": str(conf)}
        subprocess.run(["postfix", "-c", str(conf), "set-permissions"], env=self.env, capture_output=True)
        p = subprocess.run(["postfix", "-c", str(conf), "start"], env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"postfix start failed: {p.stderr.strip()}")
        wait_port(self.port)
        self.conf = conf
        self.mail = mail
        self.queue = queue

    @property
    def pid(self) -> int | None:
        """The master process (its tree: smtpd, cleanup, qmgr, virtual…)."""
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def delivered(self) -> int:
        return sum(len(os.listdir(self.mail / "b" / sub)) for sub in ("new", "cur") if (self.mail / "b" / sub).exists())

    def wait_delivered(self, n: int, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while self.delivered() < n and time.time() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], env=self.env, capture_output=True)
        time.sleep(0.5)
        shutil.rmtree(self.dir, ignore_errors=True)


def medians(rounds: int, contenders: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Runs each contender once per round, alternating, and returns the median of each."""
    results: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            results[name].append(fn())
    return {k: statistics.median(v) for k, v in results.items()}


# ---------------------------------------------------------------- CPU of a server's whole process tree (BENCH-NOTES)

_TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from /proc/*/stat's parent field)."""
    parents: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            parents.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo += parents.get(q, [])
    return out


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid``'s tree: each live process's own time plus what its reaped
    children used (cutime, cstime) — a child that exits moves from one sum to the other, never counted twice."""
    total = 0
    for p in tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / _TICK


class Meter:
    """Rates with the CPU they cost: ``run(pid, n, fn)`` calls ``fn()`` (it returns messages/second for ``n``
    messages) and keeps the CPU milliseconds per message of ``pid``'s tree during the call (``pid`` None: not
    measured). ``cpu[name]`` holds each round's figure; ``ms(name)`` the median."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = {}

    def wrap(self, name: str, pid: Callable[[], int | None], n: int, fn: Callable[[], float]) -> Callable[[], float]:
        def run() -> float:
            p = pid()
            before = tree_cpu(p) if p else 0.0
            rate = fn()
            if p:
                self.cpu.setdefault(name, []).append((tree_cpu(p) - before) * 1000 / n)
            return rate
        return run

    def ms(self, name: str) -> float | None:
        v = self.cpu.get(name)
        return statistics.median(v) if v else None

    def fmt(self, name: str) -> str:
        v = self.ms(name)
        return "—" if v is None else f"{v:.2f}"


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
