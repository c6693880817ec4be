"""relay: messages/second relayed by courrier's outbound queue to Postfix's smtp-sink, over 20 destination domains.

The queue is preloaded while the server is stopped (spool records + queue rows, as after a restart with a full
queue), then ``courrier serve`` starts and the clock runs from the moment its port opens until the spool is empty:
MX lookups (dnslib fake DNS on loopback, cached), STARTTLS-less SMTP to smtp-sink, per-destination concurrency 4,
connection reuse, the delivery log rows, and the removal of each spool file. 2 KB messages, one recipient each,
spread over d0…d19.bench.test. Reference in the same run: smtp-source straight into the same smtp-sink with 20
sessions (the protocol-speed ceiling without a queue).

CPU per message: courrier's whole process tree from the port opening to the empty spool (start-up excluded), and the
sink's in each contender's rounds.

``BENCH_BEFORE=/path/to/other/tree``: courrier run from that source tree joins the rounds as "before" (same
preloaded queue), so a step's before/after comes from one interleaved run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import Meter, Sink, medians, smtp_source, tree_cpu
from scn_smtp import code_from

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from courrier.mail.envelope import Envelope, Recipient, new_queue_id  # noqa: E402
from courrier.mail.path import parse_address  # noqa: E402
from courrier.queue.spool import Spool  # noqa: E402
from courrier.queue.store import SQLiteQueueStore  # noqa: E402
from tests.dnsfake import FakeDNS  # noqa: E402
from tests.support import Server  # noqa: E402

DESTINATIONS = 20
SIZE = 2048


def _message(i: int) -> bytes:
    head = (f"From: sender@src.bench.test\r\nTo: u{i}@d{i % DESTINATIONS}.bench.test\r\n"
            f"Subject: relay bench {i}\r\nMessage-ID: <{i}.relay@src.bench.test>\r\n\r\n")
    line = b"x" * 76 + b"\r\n"
    body = line * ((SIZE - len(head)) // len(line))
    return head.encode() + body


def relay_once(n: int, dns: FakeDNS, sink_port: int, meter: Meter | None = None, tree: str | None = None,
               name: str = "courrier") -> float:
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-relay-"))
    try:
        srv = Server(d, listeners=("smtp",), domains=("src.bench.test",), hostname="courrier.src.bench.test",
                     sections={"delivery": {"nameservers": [dns.address], "mx_port": sink_port,
                                            "concurrency_per_destination": 4}})
        spool = Spool(srv.data / "queue")
        store = SQLiteQueueStore(srv.data / "courrier.db")
        now = time.time()
        for i in range(n):
            msg = _message(i)
            env = Envelope(queue_id=new_queue_id(), mail_from=parse_address("sender@src.bench.test"),
                           rcpts=[Recipient(parse_address(f"u{i}@d{i % DESTINATIONS}.bench.test"))], received_at=now,
                           origin="bench")
            spool.write(env, [msg])
            store.add(env.queue_id, str(env.mail_from), now, len(msg), [str(r.address) for r in env.rcpts])
        store.close()
        with code_from(tree):
            srv.start(timeout=60)
        assert srv.proc is not None
        cpu0 = tree_cpu(srv.proc.pid)
        t0 = time.perf_counter()
        msgdir = srv.data / "queue" / "msg"
        deadline = time.time() + 600
        while os.listdir(msgdir) and time.time() < deadline:
            time.sleep(0.01)
        dt = time.perf_counter() - t0
        if meter is not None:
            meter.cpu.setdefault(name, []).append((tree_cpu(srv.proc.pid) - cpu0) * 1000 / n)
        left = len(os.listdir(msgdir))
        srv.stop()
        if left:
            raise RuntimeError(f"relay bench: {left} messages still queued after 600 s; see {srv.log_path}")
        return n / dt
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(args) -> list[str]:
    n = 300 if args.quick else 2000
    rounds = 1 if args.quick else args.rounds
    before_tree = os.environ.get("BENCH_BEFORE") or None
    sink = Sink()
    records: dict[str, object] = {}
    for k in range(DESTINATIONS):
        records[f"d{k}.bench.test"] = {"MX": [(10, "mx.sink.bench.test")]}
    records["mx.sink.bench.test"] = {"A": ["127.0.0.1"]}
    meter = Meter()
    try:
        with FakeDNS(records, negative_ttl=300) as dns:
            contenders = {
                "courrier": meter.wrap("sink/courrier", lambda: sink.proc.pid, n,
                                       lambda: relay_once(n, dns, sink.port, meter)),
                "direct": meter.wrap("sink/direct", lambda: sink.proc.pid, n,
                                     lambda: smtp_source(sink.port, sessions=DESTINATIONS, messages=n, size=SIZE)),
            }
            if before_tree:
                contenders["before"] = lambda: relay_once(n, dns, sink.port, meter, before_tree, "before")
            r = medians(rounds, contenders)
    finally:
        sink.stop()
    extra = [f"{'before (BENCH_BEFORE)':<34}{r['before']:>15.0f}{'':>18}{r['before'] / r['direct']:>7.2f}",
             f"{'CPU ms/msg: before tree':<34}{meter.fmt('before'):>15}"] if before_tree else []
    return [
        f"{'case':<34}{'courrier relay':>15}{'smtp-source→sink':>18}{'ratio':>7}",
        f"{f'{n} msgs × 2 KB, {DESTINATIONS} destinations':<34}{r['courrier']:>15.0f}{r['direct']:>18.0f}"
        f"{r['courrier'] / r['direct']:>7.2f}",
        f"{'CPU ms/msg: courrier tree':<34}{meter.fmt('courrier'):>15}",
        *extra,
        f"{'CPU ms/msg: smtp-sink':<34}{meter.fmt('sink/courrier'):>15}{meter.fmt('sink/direct'):>18}",
        f"(messages/second; medians of {rounds} interleaved rounds; courrier: queue preloaded, clock from port open "
        f"to empty; target ratio ≥ 0.5: {'met' if r['courrier'] >= 0.5 * r['direct'] else 'NOT met'}; "
        f"load average {os.getloadavg()[0]:.1f})",
    ]
