"""qresync: QRESYNC resync (RFC 7162 §3.2.5) of a 10,000-message mailbox after 100 changes — courrier vs Dovecot.

Two copies of one Maildir (10,000 small messages) are served by `courrier serve` and by a private Dovecot
(tests/access/dovecot.py). Each round, for each server in turn: another session makes 100 changes through that server
(80 messages get a flag, 20 are expunged), then a fresh connection that has said ``ENABLE QRESYNC`` is timed for
``SELECT INBOX (QRESYNC (uidvalidity modseq))`` (the resync: VANISHED (EARLIER) and the changed flags) and for the
``UID FETCH 1:* (FLAGS) (CHANGEDSINCE modseq)`` a client sends after it. Target (issue 16): the SELECT ≤ 50 ms.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from courrier.mailbox import maildir  # noqa: E402
from tests.access.dovecot import Dovecot  # noqa: E402
from tests.support import Server  # noqa: E402

USER, PASSWORD = "b@bench.test", "secret"
TARGET_MS = 50.0


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.sock.makefile("rb")
        self.f.readline()
        self.n = 0

    def command(self, cmd: str) -> list[bytes]:
        self.n += 1
        tag = f"q{self.n}".encode()
        self.sock.sendall(tag + b" " + cmd.encode() + b"\r\n")
        out = []
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("closed")
            out.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return out

    def close(self) -> None:
        self.sock.close()


def populate(box: Path, n: int) -> None:
    maildir.ensure(box)
    for i in range(n):
        maildir.write_new(box, [f"From: s{i}@else.test\nSubject: m{i}\nMessage-ID: <{i}@bench.test>\n\nbody {i}\n"
                                .encode()], sync=False)


def state(lines: list[bytes]) -> tuple[int, int]:
    text = b"".join(lines)
    return (int(re.search(rb"UIDVALIDITY (\d+)", text).group(1)),
            int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1)))


def change(port: int, rnd: random.Random) -> tuple[int, int]:
    """100 changes through the server: 80 flagged, 20 expunged. Returns (UIDVALIDITY, HIGHESTMODSEQ) before them."""
    c = Client(port)
    c.command(f"LOGIN {USER} {PASSWORD}")
    before = state(c.command("SELECT INBOX (CONDSTORE)"))
    unflagged = [int(x) for x in c.command("SEARCH UNFLAGGED")[0].split()[2:]]  # so each STORE is a change
    picked = rnd.sample(unflagged, 100)
    c.command("STORE " + ",".join(map(str, picked[:80])) + " +FLAGS.SILENT (\\Flagged)")
    c.command("STORE " + ",".join(map(str, picked[80:])) + " +FLAGS.SILENT (\\Deleted)")
    c.command("EXPUNGE")
    c.command("LOGOUT")
    c.close()
    return before


def resync(port: int, uidvalidity: int, modseq: int) -> tuple[float, float, int, int]:
    """(SELECT QRESYNC seconds, UID FETCH CHANGEDSINCE seconds, VANISHED lines' UIDs, FETCH responses)."""
    c = Client(port)
    c.command(f"LOGIN {USER} {PASSWORD}")
    c.command("ENABLE QRESYNC")
    t0 = time.perf_counter()
    sel = c.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")
    t1 = time.perf_counter()
    fetched = c.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})")
    t2 = time.perf_counter()
    c.command("LOGOUT")
    c.close()
    vanished = sum(_count(ln) for ln in sel if ln.startswith(b"* VANISHED"))
    flags = sum(1 for ln in sel if b" FETCH (" in ln)
    assert flags == 80 and vanished == 20, (flags, vanished)
    assert sum(1 for ln in fetched if b" FETCH (" in ln) == 80
    return t1 - t0, t2 - t1, vanished, flags


def _count(line: bytes) -> int:
    n = 0
    for part in line.split()[-1].split(b","):
        a, _, b = part.partition(b":")
        n += int(b or a) - int(a) + 1
    return n


def run(args) -> list[str]:
    n = 1000 if args.quick else 10_000
    rounds = 1 if args.quick else max(args.rounds, 5)
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-qresync-"))
    (d / "courrier").mkdir()
    srv = Server(d / "courrier", listeners=("imap",), domains=("bench.test",))
    srv.add_user(USER, PASSWORD)
    box = srv.maildir(USER)
    populate(box, n)
    shutil.copytree(box, d / "dovecot-maildir")
    srv.start()
    dv = Dovecot(d / "dovecot", d / "dovecot-maildir").start()
    ports = {"courrier": srv.ports["imap"], "dovecot": dv.port}
    timings: dict[str, list[tuple[float, float]]] = {k: [] for k in ports}
    rnd = random.Random(7)
    try:
        for port in ports.values():  # untimed: both build their index and warm the page cache
            v, m = change(port, rnd)
            resync(port, v, m)
        for _ in range(rounds):
            for name, port in ports.items():
                v, m = change(port, rnd)
                ts, tf, _, _ = resync(port, v, m)
                timings[name].append((ts, tf))
    finally:
        dv.stop()
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)

    def med(name: str, i: int) -> float:
        return statistics.median(t[i] for t in timings[name])

    lines = [f"{n} messages, 100 changes per round (80 flagged, 20 expunged), {rounds} interleaved rounds; medians",
             f"{'':<34}{'courrier ms':>12}{'dovecot ms':>12}{'c/dovecot':>11}"]
    for label, i in (("SELECT (QRESYNC (v m))", 0), ("UID FETCH 1:* (CHANGEDSINCE m)", 1)):
        c, v = med("courrier", i) * 1000, med("dovecot", i) * 1000
        lines.append(f"{label:<34}{c:>12.1f}{v:>12.1f}{c / v:>11.2f}")
    sel = med("courrier", 0) * 1000
    lines.append(f"target: SELECT QRESYNC ≤ {TARGET_MS:.0f} ms — {'met' if sel <= TARGET_MS else 'MISSED'} ({sel:.1f} ms)")
    return lines
