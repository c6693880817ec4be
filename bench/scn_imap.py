"""imap: FETCH of the headers, then the bodies, of 10,000 messages — courrier vs Dovecot on the same Maildir.

One Maildir (written directly, ~4 KB messages, a fifth of them multipart) is served by `courrier serve` and by a
private Dovecot (tests/access/dovecot.py). After one untimed pass each (both build their index and warm the page
cache), every round times, on a fresh connection: ``FETCH 1:* (BODY.PEEK[HEADER])`` then ``FETCH 1:* (BODY.PEEK[])``.
The client is a raw socket that only counts octets, so client-side parsing does not blur the comparison; both
servers must return the same number of octets. Prints medians of interleaved rounds and courrier/Dovecot ratios.
"""

from __future__ import annotations

import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import medians

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from courrier.mailbox import maildir  # noqa: E402
from tests.access.dovecot import Dovecot  # noqa: E402
from tests.support import Server  # noqa: E402

USER, PASSWORD = "b@bench.test", "secret"


def message(i: int, rnd: random.Random) -> bytes:
    words = " ".join(rnd.choice(["mail", "server", "courrier", "imap", "fetch", "body", "header", "dovecot"])
                     for _ in range(500))
    text = "\n".join(words[k:k + 72] for k in range(0, len(words), 72))
    head = (f"From: Sender {i} <sender{i}@else.test>\nTo: {USER}\nSubject: bench message {i}\n"
            f"Date: Mon, 02 Mar 2026 10:00:00 +0000\nMessage-ID: <{i}@bench.test>\nMIME-Version: 1.0\n")
    if i % 5 == 0:
        return (head + 'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
                + text + "\n--b\nContent-Type: text/html\n\n<p>" + text + "</p>\n--b--\n").encode()
    return (head + "Content-Type: text/plain; charset=us-ascii\n\n" + text + "\n").encode()


def populate(box: Path, n: int) -> None:
    rnd = random.Random(6)
    maildir.ensure(box)
    for i in range(n):
        maildir.write_new(box, [message(i, rnd)], sync=False)


class RawIMAP:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.recv(65536)
        self.n = 0

    def command(self, cmd: str) -> int:
        """Sends one command; returns the octets of the answer (read until the tagged completion)."""
        self.n += 1
        tag = f"bq{self.n}".encode()
        self.sock.sendall(tag + b" " + cmd.encode() + b"\r\n")
        total, tail = 0, b""
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            total += len(chunk)
            tail = (tail + chunk)[-4096:]
            if tail.endswith(b"\r\n"):
                last = tail[:-2].rsplit(b"\r\n", 1)[-1]
                if last.startswith(tag + b" "):
                    if not last.startswith(tag + b" OK"):
                        raise RuntimeError(last.decode(errors="replace"))
                    return total - len(last) - 2  # the untagged data only: completion texts differ

    def close(self) -> None:
        self.sock.close()


def session(port: int) -> tuple[float, float, int, int]:
    c = RawIMAP(port)
    c.command(f"LOGIN {USER} {PASSWORD}")
    c.command("EXAMINE INBOX")
    t0 = time.perf_counter()
    h = c.command("FETCH 1:* (BODY.PEEK[HEADER])")
    t1 = time.perf_counter()
    b = c.command("FETCH 1:* (BODY.PEEK[])")
    t2 = time.perf_counter()
    c.command("LOGOUT")
    c.close()
    return t1 - t0, t2 - t1, h, b


def run(args) -> list[str]:
    n = 1000 if args.quick else 10_000
    rounds = 1 if args.quick else args.rounds
    d = Path(tempfile.mkdtemp(prefix="courrier-bench-imap-"))
    (d / "courrier").mkdir()
    srv = Server(d / "courrier", listeners=("imap",), domains=("bench.test",))
    srv.add_user(USER, PASSWORD)
    box = srv.maildir(USER)
    populate(box, n)
    srv.start()
    dv = Dovecot(d / "dovecot", box).start()
    sizes: dict[str, tuple[int, int]] = {}
    timings: dict[str, list[tuple[float, float]]] = {"courrier": [], "dovecot": []}
    ports = {"courrier": srv.ports["imap"], "dovecot": dv.port}
    try:
        for name, port in ports.items():  # untimed: index building and page cache
            _, _, h, b = session(port)
            sizes[name] = (h, b)

        def contender(name: str):
            def go() -> float:
                th, tb, _, _ = session(ports[name])
                timings[name].append((th, tb))
                return th + tb
            return go

        medians(rounds, {k: contender(k) for k in ports})
    finally:
        dv.stop()
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)

    def med(name: str, i: int) -> float:
        return statistics.median(t[i] for t in timings[name])

    lines = [f"{n} messages, {rounds} interleaved rounds; octets returned "
             f"courrier {sizes['courrier']} dovecot {sizes['dovecot']}",
             f"{'fetch':<22}{'courrier s':>12}{'dovecot s':>12}{'c/dovecot':>11}{'courrier msg/s':>16}"]
    for label, i in (("BODY.PEEK[HEADER]", 0), ("BODY.PEEK[]", 1)):
        c, v = med("courrier", i), med("dovecot", i)
        lines.append(f"{label:<22}{c:>12.3f}{v:>12.3f}{c / v:>11.2f}{n / c:>16.0f}")
    c = med("courrier", 0) + med("courrier", 1)
    v = med("dovecot", 0) + med("dovecot", 1)
    lines.append(f"{'headers + bodies':<22}{c:>12.3f}{v:>12.3f}{c / v:>11.2f}")
    if sizes["courrier"] != sizes["dovecot"]:
        lines.append("WARNING: the servers returned different octet counts")
    return lines
