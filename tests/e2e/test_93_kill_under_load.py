"""Scenario 93: the 250 promise under the benchmarks' load — kill -9 in the middle of it, restart, count.

The load is shaped like ``bench/run.py smtp`` and ``capture`` (20 sessions, a new connection per message, 2 KB),
sent with smtplib from 20 threads that note each message's 250. The server is killed with SIGKILL while they send,
then started again on the same data: every acknowledged message must be there exactly once, whole — in the Maildir
for the MX role; in capture mode listed by the API (read-your-writes across a crash: the index row, or the start-up
scan, puts it back in the list).
"""

import json
import smtplib
import threading
import time
import urllib.request

SESSIONS = 20
LINE = b"x" * 76 + b"\r\n"
BODY = LINE * 25  # ≈ 2 KB with the header


class Load:
    """20 smtplib clients, a new connection per message; ``acked`` maps each Subject to the 250's text."""

    def __init__(self, port: int, rcpt: str) -> None:
        self.port, self.rcpt = port, rcpt
        self.acked: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(SESSIONS)]

    def client(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            tag = f"k{n}-{i}"
            i += 1
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
                    c.ehlo("load.test")
                    c.mail("load@else.test")
                    c.rcpt(self.rcpt)
                    code, text = c.data(f"Subject: {tag}\r\nMessage-ID: <{tag}@load.test>\r\n\r\n".encode() + BODY)
            except (OSError, smtplib.SMTPException):
                if self.stop.is_set():
                    return
                continue  # the server is gone or busy: the next try says which
            if code == 250:
                with self.lock:
                    self.acked[tag] = text

    def run_until(self, n: int, timeout: float = 20) -> None:
        for t in self.threads:
            t.start()
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def halt(self) -> dict[str, bytes]:
        self.stop.set()
        for t in self.threads:
            t.join(15)
        return dict(self.acked)


def test_mx_kill9_under_bench_load(server_factory):
    mx = server_factory("mx", domains=("bench.test",), sections={"limits": {"max_connections_per_ip": 1000}})
    mx.add_user("b@bench.test")
    mx.start()
    load = Load(mx.ports["smtp"], "b@bench.test")
    load.run_until(200)
    mx.kill9()
    acked = load.halt()
    assert len(acked) >= 200
    mx.start()
    got = [m["Subject"] for m in mx.parsed("b@bench.test")]
    assert [s for s in acked if got.count(s) != 1] == []  # each acknowledged message once
    for m in mx.parsed("b@bench.test"):
        assert m.get_payload() == (LINE * 25).decode().replace("\r\n", "\n")  # none torn


def test_capture_kill9_under_bench_load(server_factory):
    cap = server_factory("cap", listeners=("smtp", "http"), serve_args=("--capture",),
                         sections={"capture": {"max_messages": 0}, "limits": {"max_connections_per_ip": 1000}})
    cap.start()
    load = Load(cap.ports["smtp"], "someone@bench.test")
    load.run_until(200)
    cap.kill9()
    acked = load.halt()
    assert len(acked) >= 200
    cap.start()
    url = f"http://127.0.0.1:{cap.ports['http']}/api/v1/messages?limit=100000"
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(url, timeout=10) as r:
            listed = json.load(r)["messages"]
        subjects = [m["Subject"] for m in listed]
        missing = [s for s in acked if subjects.count(s) != 1]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert missing == []
    ids = {m["Subject"]: m["ID"] for m in listed}
    for subject, reply in list(acked.items())[:50]:  # the 250 named the ID the API lists it under
        assert reply.decode().endswith(f"queued as {ids[subject]}"), (subject, reply)
