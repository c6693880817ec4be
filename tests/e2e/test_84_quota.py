"""Scenario 84: storage quotas (issue 15 item 5) against a running server with real clients.

``courrier user quota`` on the running server (taking effect at once) and a refused quota below usage (one line,
nothing changed); ``user list`` usage; smtplib getting 552 5.2.2 at the end of DATA, a message for a full and a
roomy mailbox stored for one and bounced (DSN 5.2.2) for the other; swaks getting 552 5.2.2 at RCPT once the
mailbox is full, and at RCPT from a SIZE= too big for the room left; imaplib's GETQUOTAROOT/GETQUOTA numbers equal
to the files; APPEND over quota NO [OVERQUOTA]; ``courrier sendmail`` to a full mailbox bounced with 5.2.2 by the
queue; ``[accounts] default_quota`` for an account without its own.
"""

from __future__ import annotations

import email
import smtplib
import subprocess
import time

import pytest

from courrier.accounts import Accounts
from tests.access.clients import imap, wait_for
from tests.support import Server, run_cli

ANN, BOB, CAROL = "ann@example.test", "bob@example.test", "carol@example.test"
PASSWORD = "secret"


@pytest.fixture
def srv(server_factory):
    s = server_factory(listeners=("smtp", "imap"), sections={"accounts": {"default_quota": "1M"}})
    for who in (ANN, BOB, CAROL):
        s.add_user(who, PASSWORD)
    return s.start()


def files(box: tuple[Server, str]) -> list[bytes]:
    """The account's stored messages in every folder (Maildir files or PostgreSQL rows), as stored."""
    srv, address = box
    return [m.data for m in srv.stored_everywhere(address)]


def rfc822_octets(box: tuple[Server, str]) -> int:
    """What RFC 9208 STORAGE counts here: each message's size with CRLF line endings (FETCH RFC822.SIZE)."""
    total = 0
    for data in files(box):
        total += len(data) + data.count(b"\n") - data.count(b"\r\n")
    return total


def quota(srv, *args: str) -> str:
    """``courrier user quota`` on the running server; its accounts cache sees the change within
    ``Accounts.CACHE_CHECK`` (0.5 s), waited out here so the next client meets the new limit."""
    out = srv.cli("user", "quota", *args).stdout
    time.sleep(Accounts.CACHE_CHECK + 0.2)
    return out


def message(subject: str, size: int, sender: str = "x@else.test", to: str = ANN) -> bytes:
    body = ("q" * 70 + "\r\n") * (size // 72 + 1)
    return f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}".encode()


def send(srv, rcpts: list[str], data: bytes, sender: str = "x@else.test") -> tuple[int, bytes]:
    """One transaction without SIZE= (smtplib's sendmail would declare it, and RCPT would already refuse): the
    reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=20) as s:
        s.ehlo("client.test")
        assert s.mail(sender)[0] == 250
        for r in rcpts:
            assert s.rcpt(r)[0] == 250
        return s.data(data)


def test_quota_end_to_end(srv):
    ann_box, bob_box, carol_box = (srv, ANN), (srv, BOB), (srv, CAROL)

    # the default quota applies to an account without its own, and user list shows the usage
    assert "quota 1M (1048576 octets, [accounts] default_quota)" in srv.cli("user", "quota", ANN).stdout
    assert send(srv, [ANN], message("first", 10_000))[0] == 250
    wait_for(lambda: len(files(ann_box)) == 1, what="first message stored")
    listing = srv.cli("user", "list").stdout
    line = next(ln for ln in listing.splitlines() if ln.startswith(ANN))
    assert line.endswith("of 1M (0%)") and "used 10." in line, listing

    # a quota below usage: one line, exit 1, nothing changed
    r = srv.cli("user", "quota", ANN, "5K", check=False)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r
    assert r.stderr.startswith(f"courrier: {ANN} already uses") and "quota not changed" in r.stderr
    assert "[accounts] default_quota" in srv.cli("user", "quota", ANN).stdout
    bad = srv.cli("user", "quota", ANN, "lots", check=False)
    assert bad.returncode == 1 and "bad size" in bad.stderr

    # an own quota on the running server: 20K leaves room for less than the next message → 552 5.2.2 after DATA
    assert quota(srv, ANN, "20K").strip() == f"quota of {ANN}: 20K"
    code, text = send(srv, [ANN], message("too big", 15_000))
    assert code == 552 and text.startswith(b"5.2.2"), text
    assert len(files(ann_box)) == 1  # nothing stored

    # a full and a roomy recipient: 250, stored for bob, a failure DSN (5.2.2) for ann to the local sender
    assert send(srv, [ANN, BOB], message("for both", 15_000, sender=CAROL), sender=CAROL)[0] == 250
    wait_for(lambda: len(files(bob_box)) == 1, what="bob's copy")
    assert len(files(ann_box)) == 1
    dsn = wait_for(lambda: [p for p in files(carol_box) if b"5.2.2" in p], timeout=20, what="DSN")
    report = email.message_from_bytes(dsn[0])
    assert report.get_content_type() == "multipart/report"
    status = dsn[0].decode()
    assert f"Final-Recipient: rfc822; {ANN}" in status and "Action: failed" in status and "Status: 5.2.2" in status
    assert f"rfc822; {BOB}" not in status

    # IMAP (RFC 9208): the numbers are the files'; APPEND over quota is refused and stores nothing
    c = imap(srv, user=ANN)
    assert "QUOTA" in c.capability()[1][0].decode().split()
    typ, data = c.getquotaroot("INBOX")
    used_kib = (rfc822_octets(ann_box) + 1023) // 1024
    assert typ == "OK" and data == [[b'INBOX ""'], [f'"" (STORAGE {used_kib} 20)'.encode()]], data
    assert c.getquota('""')[1] == [f'"" (STORAGE {used_kib} 20)'.encode()]
    typ, data = c.append("Drafts", None, None, message("draft", 12_000))
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    assert len(files(ann_box)) == 1
    # fill the mailbox to the brim (a small APPEND fits), then it is full
    room = 20 * 1024 - rfc822_octets(ann_box)
    assert c.append("INBOX", None, None, message("fill", room - 200)[: room])[0] == "OK"
    quota(srv, ANN, str(rfc822_octets(ann_box)))
    c.logout()

    # swaks: a full mailbox is refused at RCPT (RFC 5321 §4.5.3.1.10), the transaction going on for others
    p = subprocess.run(["swaks", "--server", f"127.0.0.1:{srv.ports['smtp']}", "--helo", "client.test",
                        "--from", "x@else.test", "--to", f"{ANN},{BOB}", "--body", "hello"],
                       capture_output=True, text=True, timeout=60)
    assert "<** 552 5.2.2" in p.stdout and "<-  250 2.0.0" in p.stdout, p.stdout
    wait_for(lambda: len(files(bob_box)) == 2, what="bob's second message")

    # RCPT with SIZE= bigger than the room left (RFC 1870): refused before the data is sent
    quota(srv, ANN, str(rfc822_octets(ann_box) + 1000), "--force")
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=20) as s:
        s.ehlo("client.test")
        assert s.mail("x@else.test", ["SIZE=5000"])[0] == 250
        code, text = s.rcpt(ANN)
        assert (code, text[:5]) == (552, b"5.2.2")
        assert s.rcpt(BOB)[0] == 250

    # the queue's local route (courrier sendmail): a permanent 5.2.2, bounced to the (local) sender
    before = files(carol_box)
    run_cli("sendmail", "-f", CAROL, ANN, "--config", str(srv.config), input=message("via queue", 8_000).decode())
    wait_for(lambda: len(files(carol_box)) > len(before), timeout=30, what="queue DSN")
    [newest] = [m.decode() for m in files(carol_box) if m not in before]
    assert "Status: 5.2.2" in newest and f"rfc822; {ANN}" in newest

    # 0 = no limit (even with a default): mail flows again, and user list says so
    quota(srv, ANN, "0")
    assert send(srv, [ANN], message("unlimited", 30_000))[0] == 250
    line = next(ln for ln in srv.cli("user", "list").stdout.splitlines() if ln.startswith(ANN))
    assert line.startswith(f"{ANN}  used ") and " of " not in line, line
