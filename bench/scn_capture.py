"""Messages/second kept — `courrier serve --capture` vs MailDev (npm `maildev`) vs Postfix's smtp-sink.

Load from Postfix's smtp-source: 20 sessions, 2 KB messages, a new connection per message (BENCH-NOTES' setup).
courrier keeps every message durably (Maildir file fsync'ed before the 250, SQLite/FTS5 index, default retention of
500 messages, so pruning runs too); MailDev runs with ``--mail-directory`` (files on disk, no fsync) and
``--max-emails 500``; smtp-sink discards. Contenders alternate round by round; medians and ratios are printed.
Targets (issue 3): courrier ≥ 3× MailDev and ≥ 0.15× smtp-sink; (issue 17) ≥ 0.5× smtp-sink, also with 100 KB
messages (20 sessions, a quarter as many messages; courrier and the sink only).

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
        })
        big = max(100, n // 4)  # issue 17: 100 KB messages too (courrier and the sink; MailDev's figure is in NOTES)
        big_meter = Meter()
        rb = medians(rounds, {
            "courrier": big_meter.wrap("courrier", lambda: srv.proc.pid, big, lambda: smtp_source(
                srv.ports["smtp"], sessions=SESSIONS, messages=big, size=100 * 1024)),
            "sink": big_meter.wrap("sink", lambda: sink.proc.pid, big, lambda: smtp_source(
                sink.port, sessions=SESSIONS, messages=big, size=100 * 1024)),
        })
        deadline = time.time() + 10  # retention runs as each message is indexed, just after its 250
        while (kept := sum(1 for sub in ("new", "cur") for _ in (srv.data / "capture" / sub).iterdir())) > 500 \
                and time.time() < deadline:
            time.sleep(0.05)
    finally:
        srv.stop()
        sink.stop()
        maildev.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)
    ok = "met" if r["courrier"] >= 3 * r["maildev"] and r["courrier"] >= 0.15 * r["sink"] else "NOT met"
    ok17 = "met" if r["courrier"] >= 0.5 * r["sink"] and rb["courrier"] >= 0.5 * rb["sink"] else "NOT met"
    return [
        f"{'case':<18}{'courrier':>10}{'maildev':>10}{'smtp-sink':>11}{'c/maildev':>11}{'c/sink':>8}",
        f"{f'{SESSIONS} sess × {SIZE // 1024} KB':<18}{r['courrier']:>10.0f}{r['maildev']:>10.0f}{r['sink']:>11.0f}"
        f"{r['courrier'] / r['maildev']:>11.2f}{r['courrier'] / r['sink']:>8.2f}",
        f"{'  CPU ms/msg':<18}{meter.fmt('courrier'):>10}{meter.fmt('maildev'):>10}{meter.fmt('sink'):>11}",
        f"{f'{SESSIONS} sess × 100 KB':<18}{rb['courrier']:>10.0f}{'—':>10}{rb['sink']:>11.0f}{'—':>11}"
        f"{rb['courrier'] / rb['sink']:>8.2f}",
        f"{'  CPU ms/msg':<18}{big_meter.fmt('courrier'):>10}{'—':>10}{big_meter.fmt('sink'):>11}",
        f"(messages/second accepted, medians of {rounds} interleaved rounds of {n}; courrier kept {kept} after "
        f"retention; issue 3's target ≥ 3× maildev and ≥ 0.15× smtp-sink: {ok}; issue 17's ≥ 0.5× smtp-sink at 2 KB "
        f"and 100 KB: {ok17}; CPU = utime + stime of each server's process "
        f"tree during its rounds; load average {os.getloadavg()[0]:.1f})",
    ]
