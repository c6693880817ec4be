"""Scenario 77: ``courrier backup DIR`` of a server under load, and a second server started on the copy.

Four SMTP clients deliver without pause while an IMAP client keeps changing flags (renaming files under the backup's
feet); a message waits in the outbound queue and a DKIM key exists. Every message acknowledged (250) before the
backup started is in the copy — read over IMAP from a second server started with ``serve --data DIR``, with the
account's password — and so are the queued message and the key. DIR must be new or empty (one line otherwise).
"""

from __future__ import annotations

import imaplib
import smtplib
import threading
import time

import pytest

from tests.access.clients import PASSWORD, USER, imap
from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, message, wait_for
from tests.support import Server, free_port


@pytest.fixture
def dns():
    with FakeDNS() as d:
        d.set("remote.test", {"MX": [(10, "mx.remote.test")]})
        d.set("mx.remote.test", {"A": ["127.0.0.1"]})
        yield d


class Load:
    """SMTP clients delivering numbered messages until stopped; ``acked`` holds each one's subject after its 250."""

    def __init__(self, port: int, clients: int = 4) -> None:
        self.port, self.acked, self.stop = port, [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def run(self, who: int) -> None:
        n = 0
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            while not self.stop.is_set():
                subject = f"load {who}-{n}"
                c.sendmail("a@else.test", [USER], message("a@else.test", [USER], subject).as_bytes())
                with self.lock:
                    self.acked.append(subject)
                n += 1

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.acked)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def flag_churn(port: int, stop: threading.Event) -> None:
    c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    c.login(USER, PASSWORD)
    c.select("INBOX")
    while not stop.is_set():
        c.store("1:*", "+FLAGS", r"(\Seen)")
        c.store("1:*", "-FLAGS", r"(\Seen)")
    c.logout()


def subjects_over_imap(c: imaplib.IMAP4) -> set[str]:
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return {d[1].decode().split(":", 1)[1].strip() for d in data if isinstance(d, tuple)}


@pytest.mark.local_store("`courrier backup` copies the data dir (SQLite, Maildirs, spool); a PostgreSQL store is "
                         "backed up with PostgreSQL's tools")
def test_backup_under_load_then_start_on_the_copy(server_factory, dns, tmp_path):
    a = server_factory("a", listeners=("smtp", "submission", "imap"),
                       sections={"delivery": {"nameservers": [dns.address], "mx_port": free_port(), **FAST,
                                              "retry_first": "1h"}})
    a.add_user(USER, PASSWORD)
    a.cli("dkim", "keygen", "example.test", "--selector", "bk")
    a.start()
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=10) as c:
        c.login(USER, PASSWORD)
        c.sendmail(USER, ["far@remote.test"], message(USER, ["far@remote.test"], "waits in the queue").as_bytes())
    wait_for(lambda: "delivery.deferred" in a.log(), what="the queued message's first attempt")

    dest = tmp_path / "backup"
    stop_churn = threading.Event()
    with Load(a.ports["smtp"]) as load:
        wait_for(lambda: len(load.acked) >= 100, what="load")
        churn = threading.Thread(target=flag_churn, args=(a.ports["imap"], stop_churn), daemon=True)
        churn.start()
        time.sleep(0.3)
        before = load.snapshot()  # acknowledged before the backup starts
        out = a.cli("backup", str(dest)).stdout
        wait_for(lambda: len(load.acked) >= len(before) + 50, what="load going on after the backup")
    stop_churn.set()
    churn.join(30)
    assert out.startswith(f"backup of {a.data} in {dest}: database, ") and "1 queued" in out, out
    assert len(before) >= 100

    again = a.cli("backup", str(dest), check=False)
    assert again.returncode == 1 and again.stderr.strip().splitlines() == [
        f"courrier: {dest} is not empty (give a new or empty directory)"]
    a.stop()

    (tmp_path / "b-conf").mkdir()
    b = Server(tmp_path / "b-conf", listeners=("smtp", "imap"), serve_args=("--data", str(dest)),
               sections={"delivery": {"nameservers": [dns.address], "mx_port": free_port(), "retry_first": "1h"}})
    b.start()
    try:
        c = imap(b)  # the account and its password came along
        restored = subjects_over_imap(c)
        c.logout()
        missing = set(before) - restored
        assert not missing, f"{len(missing)} acknowledged messages missing from the copy, e.g. {sorted(missing)[:5]}"
        queued = b.cli("queue", "list", "--data", str(dest)).stdout
        assert "far@remote.test" in queued, queued
        assert (dest / "dkim" / "example.test.bk.key").is_file()
    finally:
        b.stop()
