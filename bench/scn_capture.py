"""Messages/second kept — `courrier serve --capture` vs MailDev (npm `maildev`) vs Postfix's smtp-sink.

Load from Postfix's smtp-source: 20 sessions, 2 KB messages, a new connection per message (BENCH-NOTES' setup).
courrier keeps every message durably (Maildir file fsync'ed before the 250, SQLite/FTS5 index, default retention of
500 messages, so pruning runs too); MailDev runs with ``--mail-directory`` (files on disk, no fsync) and
``--max-emails 500``; smtp-sink discards. Contenders alternate round by round; medians and ratios are printed.
Targets (issue 3): courrier ≥ 3× MailDev and ≥ 0.15× smtp-sink; (issue 17) ≥ 0.5× smtp-sink, also with 100 KB
messages (20 sessions, a quarter as many messages; courrier, the bare responder and the sink only).

The bare responder (``bench/bare_smtp.py``: asyncio Protocol + uvloop, answers and stores nothing) runs in the same
rounds: bare/sink is what Python's dialogue alone reaches here — the honest ceiling of courrier/sink in this run.

MailDev is installed on first use with npm into ``~/.cache/courrier-bench/maildev`` (never into the repository), and
runs with its own ``TMPDIR`` — its delete-all empties ``$TMPDIR/maildev`` (BENCH-NOTES).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Meter, Sink, free_port, medians, smtp_source, stop_process, wait_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import Server  # noqa: E402

MAILDEV_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "courrier-bench" / "maildev"
MAILDEV_VERSION = "maildev@3"
SESSIONS, SIZE = 20, 2048


def maildev_bin() -> Path:
    """MailDev's launcher, installed with npm under the cache dir when missing."""
    launcher = MAILDEV_DIR / "node_modules" / ".bin" / "maildev"
    if not launcher.exists():
        MAILDEV_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(MAILDEV_DIR), "--no-audit", "--no-fund", "--silent",
                        MAILDEV_VERSION], check=True, timeout=600)
    return launcher


class Bare:
    """``bench/bare_smtp.py`` in its own interpreter (the ceiling of a Python SMTP server on this machine)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_smtp.py")), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        stop_process(self.proc)


class MailDev:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="courrier-bench-maildev-"))
        self.port, web = free_port(), free_port()
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        self.proc = subprocess.Popen(
            ["node", str(maildev_bin()), "--smtp", str(self.port), "--ip", "127.0.0.1", "--web", str(web),
             "--web-ip", "127.0.0.1", "--mail-directory", str(self.tmp / "mail"), "--max-emails", "500", "--silent"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 60)

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_courrier() -> Server:
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-capture-"))
    srv = Server(d, hostname="courrier.bench.test", serve_args=("--capture",),
                 sections={"limits": {"max_connections_per_ip": 1000}})
    return srv.start()


def run(args) -> list[str]:
    n = 300 if args.quick else 2000
    rounds = 1 if args.quick else args.rounds
    srv = start_courrier()
    sink = Sink()
    bare = Bare()
    maildev = MailDev()
    try:
        meter = Meter()
        r = medians(rounds, {
            "courrier": meter.wrap("courrier", lambda: srv.proc.pid, n, lambda: smtp_source(
                srv.ports["smtp"], sessions=SESSIONS, messages=n, size=SIZE)),
            "maildev": meter.wrap("maildev", lambda: maildev.proc.pid, n, lambda: smtp_source(
                maildev.port, sessions=SESSIONS, messages=n, size=SIZE)),
            "sink": meter.wrap("sink", lambda: sink.proc.pid, n, lambda: smtp_source(
                sink.port, sessions=SESSIONS, messages=n, size=SIZE)),
            "bare": meter.wrap("bare", lambda: bare.proc.pid, n, lambda: smtp_source(
                bare.port, sessions=SESSIONS, messages=n, size=SIZE)),
        })
        big = max(100, n // 4)  # issue 17: 100 KB messages too (courrier and the sink; MailDev's figure is in NOTES)
        big_meter = Meter()
        rb = medians(rounds, {
            "courrier": big_meter.wrap("courrier", lambda: srv.proc.pid, big, lambda: smtp_source(
                srv.ports["smtp"], sessions=SESSIONS, messages=big, size=100 * 1024)),
            "sink": big_meter.wrap("sink", lambda: sink.proc.pid, big, lambda: smtp_source(
                sink.port, sessions=SESSIONS, messages=big, size=100 * 1024)),
            "bare": big_meter.wrap("bare", lambda: bare.proc.pid, big, lambda: smtp_source(
                bare.port, sessions=SESSIONS, messages=big, size=100 * 1024)),
        })
        deadline = time.time() + 10  # retention runs as each message is indexed, just after its 250
        while (kept := sum(1 for sub in ("new", "cur") for _ in (srv.data / "capture" / sub).iterdir())) > 500 \
                and time.time() < deadline:
            time.sleep(0.05)
    finally:
        srv.stop()
        sink.stop()
        bare.stop()
        maildev.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)
    ok = "met" if r["courrier"] >= 3 * r["maildev"] and r["courrier"] >= 0.15 * r["sink"] else "NOT met"
    ok17 = "met" if r["courrier"] >= 0.5 * r["sink"] and rb["courrier"] >= 0.5 * rb["sink"] else "NOT met"
    head = (f"{'case':<18}{'courrier':>10}{'maildev':>10}{'bare':>8}{'smtp-sink':>11}{'c/maildev':>11}{'c/sink':>8}"
            f"{'c/bare':>8}{'bare/sink':>11}")

    def line(label: str, res: dict[str, float]) -> str:
        md = res.get("maildev")
        c = res["courrier"]
        md_rate, md_ratio = (f"{md:.0f}", f"{c / md:.2f}") if md else ("—", "—")
        return (f"{label:<18}{c:>10.0f}{md_rate:>10}{res['bare']:>8.0f}{res['sink']:>11.0f}{md_ratio:>11}"
                f"{c / res['sink']:>8.2f}{c / res['bare']:>8.2f}{res['bare'] / res['sink']:>11.2f}")

    def cpu(label: str, m: Meter) -> str:
        return f"{label:<18}{m.fmt('courrier'):>10}{m.fmt('maildev'):>10}{m.fmt('bare'):>8}{m.fmt('sink'):>11}"

    return [
        head,
        line(f"{SESSIONS} sess × {SIZE // 1024} KB", r),
        cpu("  CPU ms/msg", meter),
        line(f"{SESSIONS} sess × 100 KB", rb),
        cpu("  CPU ms/msg", big_meter),
        f"(messages/second accepted, medians of {rounds} interleaved rounds of {n} ({big} at 100 KB); courrier kept "
        f"{kept} after retention; issue 3's target ≥ 3× maildev and ≥ 0.15× smtp-sink: {ok}; issue 17's ≥ 0.5× "
        f"smtp-sink at 2 KB and 100 KB: {ok17}; bare = a Python asyncio+uvloop responder that stores nothing (the "
        f"ceiling); CPU = utime + stime of each server's process tree during its rounds; load average "
        f"{os.getloadavg()[0]:.1f})",
    ]
