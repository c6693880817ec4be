"""Capture store, local (Maildir + SQLite/FTS5) against PostgreSQL (with and without the optional pg_trgm index of
migration 0006), in one interleaved run on the private PostgreSQL of tests/pgcluster.py: ``add_bytes`` (the API's
send: parse, store, commit) in rounds of 100 messages, then the best of 3 runs of a few searches (one page, counts).

    python tests/cluster/measure_capture.py [N]      (docs/cluster.md, "Capture mode on PostgreSQL")
"""
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from courrier import log  # noqa: E402
from courrier.capture.store import CaptureStore  # noqa: E402
from courrier.cluster.capture_store import PgCaptureStore  # noqa: E402
from courrier.cluster.pg import migrate  # noqa: E402
from courrier.config import CaptureConfig  # noqa: E402
from tests.capture.test_store import plain  # noqa: E402
from tests.pgcluster import shared  # noqa: E402

log.event = lambda *a, **k: None  # one line per stored message would measure the terminal
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
pg = shared()
dsn, dsn2 = pg.new_database(), pg.new_database()
migrate(dsn)
migrate(dsn2)
pg.psql("DROP INDEX IF EXISTS capture_messages_substring", dsn2.rsplit("/", 1)[1])
tmp = Path(tempfile.mkdtemp())
stores = {"local": CaptureStore(tmp, CaptureConfig(max_messages=0), db_path=tmp / "c.db"),
          "pg": PgCaptureStore(dsn, CaptureConfig(max_messages=0)),
          "pg-no-trgm": PgCaptureStore(dsn2, CaptureConfig(max_messages=0))}
msgs = [plain(subject=f"subject {i} report", message_id=f"<m{i}@x>",
              body=f"body {i} " + ("banana " if i % 10 == 0 else "") + "lorem ipsum " * 40) for i in range(N)]
spent = dict.fromkeys(stores, 0.0)
for i in range(0, N, 100):
    for k, s in stores.items():
        t0 = time.perf_counter()
        for m in msgs[i:i + 100]:
            s.add_bytes(m, mail_from="a@x.test", rcpts=["bob@example.test"])
        spent[k] += time.perf_counter() - t0
print("add_bytes, messages/s: " + "  ".join(f"{k} {N / t:.0f}" for k, t in spent.items()))
for q in ("banana", "repo", "from:alice", 'subject:"subject 1"', "is:unread", "tag:x"):
    best: dict[str, float] = {}
    for _ in range(3):
        for k, s in stores.items():
            t0 = time.perf_counter()
            n = s.search(q).messages_count
            best[k] = min(best.get(k, 1e9), time.perf_counter() - t0)
    print(f"search {q!r:22} {n:5d} found  " + "  ".join(f"{k} {v * 1000:6.1f} ms" for k, v in best.items()))
print("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))
for s in stores.values():
    s.close()
