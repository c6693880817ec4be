"""smtp: messages/second accepted — courrier (MX + Maildir, fsync before 250) vs Postfix → Maildir vs smtp-sink.

Load from Postfix's smtp-source, a new connection per message, at 1, 20 and 100 sessions with 2 KB messages and
20 sessions with 100 KB. courrier runs with ``[auth] checks = false`` (no DNS in the way). Prints medians of
interleaved rounds and the ratios courrier/Postfix and courrier/smtp-sink.

``BENCH_BEFORE=/path/to/other/tree``: a second courrier, run from that source tree (e.g. ``git archive`` of an
earlier commit), joins the rounds as "before" — a step's before/after measured in one interleaved run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common import Meter, Sink, ThrowawayPostfix, medians, smtp_source, stop_process, wait_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import ENV, Server  # noqa: E402


@contextlib.contextmanager
def code_from(tree: str | None) -> Iterator[None]:
    """Servers started inside run the courrier package found in ``tree`` (None: this one)."""
    if tree is None:
        yield
        return
    old, cwd = ENV.get("PYTHONPATH"), os.getcwd()
    ENV["PYTHONPATH"] = tree
    os.chdir(tree)  # ``python -m courrier`` looks in the working directory first
    try:
        yield
    finally:
        os.chdir(cwd)
        if old is None:
            ENV.pop("PYTHONPATH", None)
        else:
            ENV["PYTHONPATH"] = old


def start_courrier(tree: str | None = None) -> tuple[Server, subprocess.Popen]:
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-"))
    srv = Server(d, domains=("bench.test",), hostname="courrier.bench.test",
                 sections={"limits": {"max_connections_per_ip": 1000}})
    with code_from(tree):
        srv.add_user("b@bench.test")
        srv.start()
    return srv, srv.proc


def run(args) -> list[str]:
    cases = [(1, 2048), (20, 2048), (100, 2048), (20, 100 * 1024)]
    n = 300 if args.quick else 2000
    rounds = 1 if args.quick else args.rounds
    before_tree = os.environ.get("BENCH_BEFORE") or None
    srv, _ = start_courrier()
    before = sink = pf = None
    try:
        if before_tree:
            before, _ = start_courrier(before_tree)
        sink = Sink()
        pf = ThrowawayPostfix()
    except BaseException:  # never leave a server or a sink running behind a failed setup
        srv.stop()
        for x in (before, sink):
            if x:
                x.stop()
        raise
    lines = [f"{'case':<18}{'courrier':>10}{'postfix':>10}{'smtp-sink':>11}{'c/postfix':>11}{'c/sink':>8}"
             f"{'CPU ms/msg: courrier':>22}{'postfix':>9}{'sink':>7}"
             + (f"{'before':>9}{'b/postfix':>11}{'CPU before':>12}" if before else "")]
    try:
        wait_port(srv.ports["smtp"])
        for sessions, size in cases:
            m = max(100, n // (4 if size > 10_000 else 1))
            def postfix_run(sessions=sessions, size=size, m=m) -> float:
                before = pf.delivered()
                rate = smtp_source(pf.port, sessions=sessions, messages=m, size=size)
                pf.wait_delivered(before + m)
                return rate

            meter = Meter()
            contenders = {
                "courrier": meter.wrap("courrier", lambda: srv.proc.pid, m, lambda s=sessions, z=size, m=m:
                                       smtp_source(srv.ports["smtp"], sessions=s, messages=m, size=z)),
                "postfix": meter.wrap("postfix", lambda: pf.pid, m, postfix_run),
                "sink": meter.wrap("sink", lambda: sink.proc.pid, m, lambda s=sessions, z=size, m=m:
                                   smtp_source(sink.port, sessions=s, messages=m, size=z)),
            }
            if before:
                contenders["before"] = meter.wrap("before", lambda: before.proc.pid, m, lambda s=sessions, z=size,
                                                  m=m: smtp_source(before.ports["smtp"], sessions=s, messages=m,
                                                                   size=z))
            r = medians(rounds, contenders)
            label = f"{sessions} sess × {size // 1024} KB"
            lines.append(f"{label:<18}{r['courrier']:>10.0f}{r['postfix']:>10.0f}{r['sink']:>11.0f}"
                         f"{r['courrier'] / r['postfix']:>11.2f}{r['courrier'] / r['sink']:>8.2f}"
                         f"{meter.fmt('courrier'):>22}{meter.fmt('postfix'):>9}{meter.fmt('sink'):>7}"
                         + (f"{r['before']:>9.0f}{r['before'] / r['postfix']:>11.2f}{meter.fmt('before'):>12}"
                            if before else ""))
    finally:
        srv.stop()
        if before:
            before.stop()
        sink.stop()
        pf.stop()
    lines.append("(messages/second accepted, medians; postfix figure = smtp-source time, 250 = in its queue, "
                 "then waited for Maildir delivery before the next round, its CPU counted until then; CPU = utime + "
                 f"stime of each server's process tree; load average {os.getloadavg()[0]:.1f})")
    _ = ENV, stop_process
    return lines
