"""Memory and start-up — RSS after 100,000 captured messages, capture start with them indexed, idle connections.

Issue 17's targets: ≤ 150 MB RSS after 100,000 captured messages; capture start with 100,000 messages indexed
≤ 2 s; ≤ 5 KiB per idle SMTP or IMAP connection at 10,000 held. ``--quick``: 10,000 messages, 2,000 connections.

- Fill: `courrier serve --capture` with no retention (``max_messages = 0``) takes N 2 KB messages from Postfix's
  smtp-source (20 sessions); RSS (VmRSS) of the server's whole process tree (the disk-writer child included) is
  read from /proc once the last message is indexed, with its peak (VmHWM).
- Start: the server is stopped and started again on the same data; the time from exec to the first answered API
  list (listeners bound, the store scanned) is the start time. Three starts, median.
- Idle connections: a fresh `courrier serve` (MX + IMAP); N clients connect and read the greeting, then hold; the
  RSS growth of the server tree divided by N is the cost of one idle connection. SMTP, then IMAP (one protocol at a
  time: each side needs N file descriptors, and this machine's hard limit is 20,000).

Absolute figures, not ratios: memory and start time do not move with the machine's load the way rates do, but run
it on a quiet machine all the same.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import smtp_source

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import Server  # noqa: E402


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat's parent field)."""
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


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pid: int, key: str = "VmRSS") -> float:
    return sum(status_kib(p, key) for p in tree(pid)) / 1024


def api_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/messages?limit=1", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("the API never answered")


def total(port: int) -> int:
    import json
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/messages?limit=1", timeout=30) as r:
        return int(json.load(r)["total"])


def capture_fill_and_start(n: int) -> list[str]:
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-memory-"))
    srv = Server(d, listeners=("smtp", "http"), hostname="courrier.bench.test", capture=True,
                 sections={"capture": {"max_messages": 0}, "limits": {"max_connections_per_ip": 1000}})
    try:
        srv.start()
        api_ready(srv.ports["http"])
        t = time.perf_counter()
        rate = smtp_source(srv.ports["smtp"], sessions=20, messages=n, size=2048)
        deadline = time.monotonic() + 120
        while total(srv.ports["http"]) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        filled = time.perf_counter() - t
        assert srv.proc is not None
        rss, peak = rss_mib(srv.proc.pid), rss_mib(srv.proc.pid, "VmHWM")
        kept = total(srv.ports["http"])
        starts = []
        for _ in range(3):
            srv.stop()
            t0 = time.perf_counter()
            srv.start(timeout=120)
            api_ready(srv.ports["http"], 120)
            starts.append(time.perf_counter() - t0)
        after_start = rss_mib(srv.proc.pid)
        return [
            f"capture fill: {kept:,} messages kept of {n:,} sent ({rate:,.0f} msg/s accepted, all indexed after "
            f"{filled:.0f} s)",
            f"  server tree RSS after the fill: {rss:.0f} MiB (peak {peak:.0f} MiB) — target ≤ 150 MB at 100,000: "
            f"{'met' if rss * 1.048576 <= 150 else 'NOT met'}{'' if n >= 100_000 else ' (fewer messages: --quick)'}",
            f"  start with them indexed (exec → first API list answered), median of 3: {statistics.median(starts):.2f} s"
            f" ({', '.join(f'{s:.2f}' for s in starts)}) — target ≤ 2 s: "
            f"{'met' if statistics.median(starts) <= 2 else 'NOT met'}; RSS after start {after_start:.0f} MiB",
        ]
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


async def hold(port: int, n: int, greeting: bytes) -> list[asyncio.StreamWriter]:
    """Opens ``n`` connections (200 at a time) and reads each greeting; returns the writers, left open."""
    writers: list[asyncio.StreamWriter] = []
    sem = asyncio.Semaphore(200)

    async def one() -> None:
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            line = await asyncio.wait_for(r.readline(), 30)
            if not line.startswith(greeting):
                raise RuntimeError(f"unexpected greeting {line[:80]!r}")
            writers.append(w)

    await asyncio.gather(*(one() for _ in range(n)))
    return writers


def idle_connections(n: int) -> list[str]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    need = n + 200
    if hard < need:
        return [f"idle connections: skipped, RLIMIT_NOFILE hard limit {hard} < {need}"]
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-idle-"))
    srv = Server(d, listeners=("smtp", "imap"), hostname="courrier.bench.test",
                 sections={"limits": {"max_connections": n + 100, "max_connections_per_ip": n + 100}})
    lines = []
    try:
        srv.start()
        assert srv.proc is not None
        for proto, greeting in (("smtp", b"220 "), ("imap", b"* OK")):
            time.sleep(1)
            before = rss_mib(srv.proc.pid)
            loop = asyncio.new_event_loop()
            try:
                writers = loop.run_until_complete(hold(srv.ports[proto], n, greeting))
                time.sleep(2)
                held = rss_mib(srv.proc.pid)
                for w in writers:
                    w.close()
                loop.run_until_complete(asyncio.sleep(1))
            finally:
                loop.close()
            per = (held - before) * 1024 / n
            lines.append(f"idle {proto.upper():<4}: {n:,} held, server tree RSS {before:.0f} → {held:.0f} MiB = "
                         f"{per:.2f} KiB per connection — target ≤ 5 KiB: {'met' if per <= 5 else 'NOT met'}")
            time.sleep(2)  # closed sessions gone before the next protocol
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return lines


def run(args) -> list[str]:
    n_msgs = 10_000 if args.quick else 100_000
    n_conns = 2_000 if args.quick else 10_000
    return [*capture_fill_and_start(n_msgs), *idle_connections(n_conns)]
