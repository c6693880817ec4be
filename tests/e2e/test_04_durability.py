"""Scenario 04: nothing acknowledged is lost — kill -9 under load, a full disk, graceful shutdown, timeouts, limits."""

import os
import signal
import smtplib
import subprocess
import threading
import time

import pytest

from tests.smtp_raw import Raw
from tests.support import Server, free_port, run_cli


def test_kill9_under_load_loses_nothing_acknowledged(server_factory):
    mx = server_factory()
    mx.add_user("bob@example.test")
    mx.start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=10) as c:
                    while not stop.is_set():
                        tag = f"c{n}-{i}"
                        i += 1
                        c.sendmail("load@else.test", ["bob@example.test"],
                                   f"Subject: {tag}\r\n\r\n".encode() + (b"x" * 76 + b"\r\n") * 27)
                        with lock:
                            acked.append(tag)
            except (OSError, smtplib.SMTPException):
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acked) < 200 and time.time() < deadline:
        time.sleep(0.05)
    mx.kill9()
    stop.set()
    for t in threads:
        t.join(20)
    assert len(acked) >= 200
    mx.start()  # restarts cleanly on the same data
    got = [m["Subject"] for m in mx.parsed("bob@example.test")]
    counts = {s: got.count(s) for s in acked}
    assert [s for s, c in counts.items() if c != 1] == []
    for m in mx.parsed("bob@example.test"):
        assert m.get_payload() == ("x" * 76 + "\n") * 27  # no torn message


@pytest.mark.local_store("fills the local store's disk (a small tmpfs under data_dir/mail); the PostgreSQL store's "
                         "outage is scenario 94's")
def test_full_disk_answers_452_and_keeps_what_was_accepted(server_factory):
    mx = server_factory()
    mail = mx.data / "mail"
    mail.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mail)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"this test needs root to mount a small tmpfs: {mounted.stderr}"
    try:
        mx.add_user("bob@example.test")  # its default folders go on the small disk too
        mx.start()
        accepted, refused = [], []
        with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=30) as c:
            for i in range(20):
                try:
                    c.sendmail("a@else.test", ["bob@example.test"],
                               f"Subject: fill-{i}\r\n\r\n".encode() + (b"z" * 998 + b"\r\n") * 100)
                    accepted.append(f"fill-{i}")
                except smtplib.SMTPDataError as e:
                    refused.append((e.smtp_code, e.smtp_error[:5]))
        assert accepted and refused
        assert set(refused) == {(452, b"4.3.1")}
        got = [m["Subject"] for m in mx.parsed("bob@example.test")]
        assert sorted(got) == sorted(accepted)
        assert os.listdir(mx.maildir("bob@example.test") / "tmp") == []  # no half-written leftovers
        assert mx.proc.poll() is None  # still serving
    finally:
        mx.stop()
        subprocess.run(["umount", "-l", str(mail)])


def test_graceful_shutdown_finishes_inflight_transaction(server_factory):
    mx = server_factory()
    mx.add_user("bob@example.test")
    mx.start()
    busy, idle = Raw(mx.ports["smtp"]), Raw(mx.ports["smtp"])
    busy.cmd("EHLO c.test")
    busy.cmd("MAIL FROM:<a@else.test>")
    busy.cmd("RCPT TO:<bob@example.test>")
    assert busy.cmd("DATA")[0] == 354
    busy.send(b"Subject: inflight\r\n\r\nfirst half\r\n")
    mx.proc.send_signal(signal.SIGTERM)
    assert idle.reply()[0] == 421  # idle sessions are told at once
    time.sleep(0.3)
    busy.send(b"second half\r\n.\r\n")
    code, text = busy.reply()
    assert code == 250, text
    assert busy.reply()[0] == 421 and busy.closed()
    assert mx.proc.wait(20) == 0
    got = [m["Subject"] for m in mx.parsed("bob@example.test")]
    assert got == ["inflight"]


def test_idle_and_data_timeouts(server_factory):
    mx = server_factory(sections={"limits": {"idle_timeout": "1s", "data_timeout": "1s"}})
    mx.add_user("bob@example.test")
    mx.start()
    r = Raw(mx.ports["smtp"])
    code, text = r.reply()
    assert (code, text[:5]) == (421, "4.4.2") and r.closed()
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    r.cmd("MAIL FROM:<a@else.test>")
    r.cmd("RCPT TO:<bob@example.test>")
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: stalled\r\n")
    code, text = r.reply()
    assert (code, text[:5]) == (421, "4.4.2") and r.closed()
    assert mx.stored("bob@example.test") == []


def test_connection_limit_per_ip(server_factory):
    mx = server_factory(sections={"limits": {"max_connections_per_ip": 3}})
    mx.start()
    held = [Raw(mx.ports["smtp"]) for _ in range(3)]
    assert all(h.greeting[0] == 220 for h in held)
    extra = Raw(mx.ports["smtp"])
    assert extra.greeting[0] == 421 and extra.closed()
    held[0].cmd("QUIT")
    time.sleep(0.2)
    assert Raw(mx.ports["smtp"]).greeting[0] == 220


def test_port_in_use_is_one_line(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = Server(tmp_path)
        srv.config.write_text(srv.config.read_text().replace(f"127.0.0.1:{srv.ports['smtp']}", f"127.0.0.1:{port}"))
        r = run_cli("serve", "--config", str(srv.config), check=False, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == f"courrier: cannot listen for smtp on 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize("listener", ["smtp"])
def test_banner_lists_listeners_and_first_account_hint(server_factory, listener):
    mx = server_factory()
    mx.start()
    deadline = time.time() + 10
    while "data dir" not in mx.log() and time.time() < deadline:
        time.sleep(0.05)
    log = mx.log()
    assert f"smtp         127.0.0.1:{mx.ports['smtp']}" in log
    assert "courrier user add you@example.test --config" in log
    assert free_port() > 0
