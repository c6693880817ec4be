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
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import medians, smtp_source, wait_port

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


def run(args) -> list[str]:
    n = 400 if args.quick else 2000
    rounds = 1 if args.quick else args.rounds
    pg = PgCluster().start()
    servers: list[Server] = []
    try:
        dsn = pg.new_database()
        local = node(None, "local")
        p1 = node(dsn, "pg1")
        p2 = node(dsn, "pg2", add_user=False)
        servers += [local, p1, p2]
        r = medians(rounds, {
            "local": lambda: smtp_source(local.ports["smtp"], sessions=20, messages=n, size=2048),
            "pg1": lambda: smtp_source(p1.ports["smtp"], sessions=20, messages=n, size=2048),
            "pg2": lambda: two(p1, p2, n),
        })
        lines = [f"{'20 sessions × 2 KB':<22}{'local':>8}{'pg 1 node':>11}{'pg 2 nodes':>12}"
                 f"{'pg1/local':>11}{'pg2/pg1':>9}",
                 f"{'messages/s':<22}{r['local']:>8.0f}{r['pg1']:>11.0f}{r['pg2']:>12.0f}"
                 f"{r['pg1'] / r['local']:>11.2f}{r['pg2'] / r['pg1']:>9.2f}"]
        tl, nl = fetch_headers(local)
        tp, np_ = fetch_headers(p1)
        lines.append(f"UID FETCH 1:* (BODY.PEEK[HEADER]): local {nl} messages {tl:.2f}s, "
                     f"pg {np_} messages {tp:.2f}s, pg/local {tp / tl * nl / max(np_, 1):.2f} (per message)")
        return lines
    finally:
        for s in servers:
            s.stop()
        pg.destroy()
