"""cluster: durable MX ingest, local store vs one and two nodes on one PostgreSQL; IMAP FETCH of every header.

Load from Postfix's smtp-source at 20 sessions, 2 KB messages, a new connection per message, against: one node on
the local store (Maildir + SQLite), one node with ``[store] backend = "postgresql"``, and two nodes on the same
database (10 sessions each, started together; rate = all messages / wall time). The PostgreSQL is a private one
(tests/pgcluster.py: fsync and synchronous_commit on). Then ``UID FETCH 1:* (BODY.PEEK[HEADER])`` over every message
of the INBOX, local vs PostgreSQL, with imaplib. Issue 18's targets: pg 1 node ≥ 0.7× local, 2 nodes ≥ 1.6× 1 node,
FETCH ≤ 2× local.
"""

from __future__ import annotations

import imaplib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import medians, smtp_source, tree_cpu, wait_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgcluster import PgCluster  # noqa: E402
from tests.support import Server  # noqa: E402

SECTIONS = {"limits": {"max_connections_per_ip": 1000}}


def node(dsn: str | None, name: str, add_user: bool = True) -> Server:
    d = Path(tempfile.mkdtemp(prefix=f"courrier-bench-{name}-"))
    sec = dict(SECTIONS)
    if dsn:
        sec["store"] = {"backend": "postgresql", "dsn": dsn, "node": name, "pool_size": 20}
    srv = Server(d, listeners=("smtp", "imap"), domains=("bench.test",), hostname=f"{name}.bench.test", sections=sec)
    if add_user:
        srv.add_user("b@bench.test")
    srv.start()
    wait_port(srv.ports["smtp"])
    return srv


def two(a: Server, b: Server, m: int) -> float:
    rates: list[float] = []
    t = time.perf_counter()
    threads = [threading.Thread(target=lambda s=s: rates.append(
        smtp_source(s.ports["smtp"], sessions=10, messages=m // 2, size=2048))) for s in (a, b)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return m / (time.perf_counter() - t)


def fetch_headers(srv: Server) -> tuple[float, int]:
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=120)
    c.login("b@bench.test", "secret")
    c.select("INBOX", readonly=True)
    t = time.perf_counter()
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
    dt = time.perf_counter() - t
    c.logout()
    return dt, sum(1 for d in data if isinstance(d, tuple))


def _machine_busy() -> float:
    """CPU seconds all cores spent busy so far (/proc/stat: everything but idle and iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """Where the CPU goes during one contender's run: the courrier node(s), PostgreSQL (the postmaster's tree: its
    backends), the load generator (smtp-source: this process's reaped children) and the rest of the machine (other
    work on it), as CPU milliseconds per message and as cores busy on average."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self.rows: dict[str, list[dict[str, float]]] = {}

    def wrap(self, name: str, nodes: list[Server], n: int, fn):  # noqa: ANN001, ANN201
        def go() -> float:
            t0, m0, c0 = time.perf_counter(), _machine_busy(), os.times()
            n0 = sum(tree_cpu(s.proc.pid) for s in nodes)
            p0 = tree_cpu(self.postmaster)
            rate = fn()
            wall = time.perf_counter() - t0
            c1 = os.times()
            row = {"node": sum(tree_cpu(s.proc.pid) for s in nodes) - n0, "pg": tree_cpu(self.postmaster) - p0,
                   "gen": c1.children_user + c1.children_system - c0.children_user - c0.children_system,
                   "machine": _machine_busy() - m0, "wall": wall, "n": n}
            self.rows.setdefault(name, []).append(row)
            return rate
        return go

    def lines(self) -> list[str]:
        out = [f"{'CPU ms/message':<22}{'node(s)':>8}{'postgres':>10}{'smtp-src':>10}{'other':>8}{'cores busy':>12}"
               f"{'of':>4}"]
        for name, rows in self.rows.items():
            med = {k: statistics.median(r[k] / r["n"] * 1000 for r in rows) for k in ("node", "pg", "gen", "machine")}
            other = med["machine"] - med["node"] - med["pg"] - med["gen"]
            busy = statistics.median(r["machine"] / r["wall"] for r in rows)
            out.append(f"{name:<22}{med['node']:>8.2f}{med['pg']:>10.2f}{med['gen']:>10.2f}{other:>8.2f}"
                       f"{busy:>12.2f}{os.cpu_count():>4}")
        return out


def run(args) -> list[str]:
    n = 400 if args.quick else 2000
    rounds = 1 if args.quick else args.rounds
    load0 = f"{os.getloadavg()[0]:.1f}"
    pg = PgCluster().start()
    servers: list[Server] = []
    try:
        dsn = pg.new_database()
        local = node(None, "local")
        p1 = node(dsn, "pg1")
        p2 = node(dsn, "pg2", add_user=False)
        servers += [local, p1, p2]
        cpu = Cpu(int((pg.data / "postmaster.pid").read_text().split()[0]))
        r = medians(rounds, {
            "local": cpu.wrap("local", [local], n,
                              lambda: smtp_source(local.ports["smtp"], sessions=20, messages=n, size=2048)),
            "pg1": cpu.wrap("pg 1 node", [p1], n,
                            lambda: smtp_source(p1.ports["smtp"], sessions=20, messages=n, size=2048)),
            "pg2": cpu.wrap("pg 2 nodes", [p1, p2], n, lambda: two(p1, p2, n)),
        })
        lines = [f"{'20 sessions × 2 KB':<22}{'local':>8}{'pg 1 node':>11}{'pg 2 nodes':>12}"
                 f"{'pg1/local':>11}{'pg2/pg1':>9}",
                 f"{'messages/s':<22}{r['local']:>8.0f}{r['pg1']:>11.0f}{r['pg2']:>12.0f}"
                 f"{r['pg1'] / r['local']:>11.2f}{r['pg2'] / r['pg1']:>9.2f}"]
        tl, nl = fetch_headers(local)
        tp, np_ = fetch_headers(p1)
        lines += cpu.lines()
        lines.append(f"load average before/after: {load0} / {os.getloadavg()[0]:.1f}")
        lines.append(f"UID FETCH 1:* (BODY.PEEK[HEADER]): local {nl} messages {tl:.2f}s, "
                     f"pg {np_} messages {tp:.2f}s, pg/local {tp / tl * nl / max(np_, 1):.2f} (per message)")
        return lines
    finally:
        for s in servers:
            s.stop()
        pg.destroy()
