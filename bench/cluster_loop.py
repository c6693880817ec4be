"""The PostgreSQL store alone, no SMTP: Python CPU per delivery and deliveries/s of ``PgMailStore`` into one folder,
one statement per delivery (``insert_one``, as before group commit) against ``deliver_sync`` (group commit), from 1
and 8 threads, alternated. ``python bench/cluster_loop.py`` (a private PostgreSQL from tests/pgcluster.py)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from courrier.cluster.mailstore import PgMailStore  # noqa: E402
from courrier.cluster.pg import migrate  # noqa: E402
from tests.pgcluster import PgCluster  # noqa: E402

BODY = b"Subject: s\r\n\r\n" + b"x" * 2000 + b"\r\n"


def run(pg: PgCluster, mode: str, threads: int, n: int = 300) -> tuple[float, float]:
    dsn = pg.new_database()
    migrate(dsn)
    st = PgMailStore(dsn, node="a", pool_size=threads)
    f = st.folder_for("b@x.test", None)
    st.deliver_sync([(f, b"X: 1\n")], lambda: iter([BODY]))
    lf = BODY.replace(b"\r\n", b"\n")

    def work() -> None:
        for _ in range(n):
            if mode == "single":
                st.index.insert_one(f, b"X: 1\n", lf, create=True)
            else:
                st.deliver_sync([(f, b"X: 1\n")], lambda: iter([BODY]))

    c0, t0 = time.process_time(), time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    st.close()
    return cpu / (n * threads) * 1e6, n * threads / wall


def main() -> None:
    pg = PgCluster().start()
    try:
        for threads in (1, 8):
            for mode in ("single", "group", "single", "group"):
                us, rate = run(pg, mode, threads)
                print(f"{mode:<7} threads={threads}: {us:6.0f} µs Python CPU/delivery, {rate:6.0f} deliveries/s",
                      flush=True)
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
