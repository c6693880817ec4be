"""api: p50/p95 latency of the inspector's list and search with 100,000 captured messages.

Targets (issue 7): p95 <= 50 ms for list, <= 200 ms for search.

How: a capture store is filled in this process through ``CaptureStore.add_bytes`` (the same path as
``POST /api/v1/send``: Maildir file + index row + FTS5 text) — with fsync turned off *for the filling only*,
since durability is not what is measured and 100,000 fsyncs would take minutes. Then a real
``courrier serve --capture`` is started on that data dir and timed over HTTP with a keep-alive client:
``GET /api/v1/messages`` (first page, and pages at random offsets) and ``GET /api/v1/search`` with Mailpit's
syntax (words in decoded QP/base64 bodies, from:, subject:, is:/has:, negation, phrases).
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import quopri
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from email.header import Header
from email.utils import formatdate
from pathlib import Path
from typing import Any

WORDS = ("invoice report meeting gazette harbour lantern quarterly shipment balance ticket nebula orchard "
         "delivery payment reminder welcome password verify account newsletter summary update schedule").split()
NAMES = ("alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent "
         "victor walter").split()
_SYL = ("ka ri to ne mu sa lo vi de pa gu fe zo ba ki ta").split()
# A vocabulary of ~4,000 made-up words, so a rare word matches a few percent of messages (as real mail does);
# the 22 WORDS above are common on purpose (each is in most messages): the worst case for a full-text search.
VOCAB = [a + b + c for a in _SYL for b in _SYL for c in _SYL]


def _message(i: int, rng: random.Random) -> tuple[bytes, str, list[str]]:
    """One message as raw bytes (cheap to make: the email package would dominate the filling time)."""
    sender = f"{rng.choice(NAMES)}@sender{i % 50}.test"
    rcpt = f"{rng.choice(NAMES)}@example.test"
    subject = f"{rng.choice(WORDS).capitalize()} {rng.choice(VOCAB)} #{i} — résumé"
    body = (" ".join(rng.choice(VOCAB) for _ in range(50)) + " " + " ".join(rng.sample(WORDS, 8))
            + f"\ncafé crème n°{i}\n").encode()
    cte = ("quoted-printable", "base64", "8bit")[i % 3]
    enc = {"quoted-printable": quopri.encodestring(body), "base64": base64.encodebytes(body), "8bit": body}[cte]
    head = (f"From: {sender}\nTo: {rcpt}\nSubject: {Header(subject, 'utf-8').encode()}\n"
            f"Date: {formatdate(1767225600 + i * 30)}\nMessage-ID: <bench-{i}@sender.test>\nMIME-Version: 1.0\n")
    part = f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {cte}\n\n".encode() + enc
    if i % 10:
        return head.encode() + part, sender, [rcpt]
    att = (f"--b{i}\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=doc{i}.pdf\n"
           f"Content-Transfer-Encoding: base64\n\n").encode() + base64.encodebytes(b"%PDF" + b"x" * 200)
    return (head.encode() + f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n".encode() + part
            + b"\n" + att + f"--b{i}--\n".encode()), sender, [rcpt]


def _fill_range(data_dir: Path, lo: int, hi: int) -> None:
    from courrier.capture.store import CaptureStore
    from courrier.config import CaptureConfig

    os.fsync = lambda fd: None  # filling only (a worker process): see the module docstring
    store = CaptureStore(data_dir, CaptureConfig(max_messages=0), db_path=data_dir / "courrier.db")
    rng = random.Random(lo)

    def one(i: int) -> None:
        raw, sender, rcpts = _message(i, rng)
        mid = store.add_bytes(raw, mail_from=sender, rcpts=rcpts)
        if i % 5 == 4:
            store.set_read([mid], True)

    with ThreadPoolExecutor(4) as pool:  # overlap the store's disk waits
        list(pool.map(one, range(lo, hi)))
    store.close()


def fill(data_dir: Path, n: int, procs: int = 2) -> float:
    """Captures ``n`` messages into ``data_dir`` from ``procs`` processes; returns the seconds it took."""
    t0 = time.perf_counter()
    step = 1000
    with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_fill_range, [data_dir] * ((n + step - 1) // step), range(0, n, step),
                      [min(n, i + step) for i in range(0, n, step)]))
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pcts(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s) * 1000, s[min(len(s) - 1, int(len(s) * 0.95))] * 1000


def run(args: Any) -> list[str]:
    import httpx

    n = 10_000 if args.quick else 100_000
    reps = 40 if args.quick else 200
    keep = os.environ.get("COURRIER_BENCH_API_DIR")  # reuse (or keep) the filled data dir between runs
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="courrier-bench-api-"))
    out: list[str] = []
    proc = None
    try:
        data = tmp / "data"
        if not (data / "courrier.db").exists():
            data.mkdir(parents=True, exist_ok=True)
            secs = fill(data, n)
            out.append(f"filled {n} messages in {secs:.0f} s ({n / secs:.0f}/s, fsync off for filling)")
        http, smtp = _free_port(), _free_port()
        cfg = tmp / "courrier.toml"
        listen = {k: '""' for k in ("submission", "submissions", "pop3", "pop3s", "imap", "imaps")}
        cfg.write_text('mode = "capture"\ndata_dir = "data"\n[capture]\nmax_messages = 0\n[listen]\n'
                       f'smtp = "127.0.0.1:{smtp}"\nhttp = "127.0.0.1:{http}"\n'
                       + "".join(f"{k} = {v}\n" for k, v in listen.items()))
        proc = subprocess.Popen([sys.executable, "-m", "courrier", "serve", "--config", str(cfg),
                                 "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{http}"
        with httpx.Client(base_url=base, timeout=30) as c:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("courrier serve did not come up")
                time.sleep(0.1)
            total = c.get("/api/v1/messages?limit=1").json()["total"]
            out.append(f"server holds {total} messages; {reps} requests per line, keep-alive client")
            rng = random.Random(1)

            def timed(path: str, params: dict[str, Any] | None = None) -> float:
                t = time.perf_counter()
                r = c.get(path, params=params)
                dt = time.perf_counter() - t
                assert r.status_code == 200, r.text
                return dt

            for _ in range(20):  # warm caches (SQLite pages, Python imports)
                timed("/api/v1/messages")
            cases: list[tuple[str, Any]] = [
                ("list first page (limit 50)", lambda: timed("/api/v1/messages", {"limit": 50})),
                ("list random page (limit 50)",
                 lambda: timed("/api/v1/messages", {"start": rng.randrange(0, max(1, total - 50)), "limit": 50})),
            ]
            queries = ["tokari", "from:alice", "subject:invoice", '"kariton mumusa"', "is:unread has:attachment",
                       "-from:bob lovide", "to:carol@example.test subject:report", "bench-4242@sender.test",
                       "message-id:bench-77@sender.test", "gazette (in most messages)"]
            for q in queries:
                real = q.split(" (")[0]
                cases.append((f"search {q!r}", lambda q=real: timed("/api/v1/search", {"query": q, "limit": 50})))
            list_p95, search_p95 = 0.0, 0.0
            for name, fn in cases:
                samples = [fn() for _ in range(reps if name.startswith("list") else max(20, reps // 4))]
                p50, p95 = _pcts(samples)
                out.append(f"  {name:<42} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
                if name.startswith("list"):
                    list_p95 = max(list_p95, p95)
                else:
                    search_p95 = max(search_p95, p95)
            out.append(f"worst p95: list {list_p95:.1f} ms (target <= 50), search {search_p95:.1f} ms (target <= 200)")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
