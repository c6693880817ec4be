"""Scenario 35b: the sender identity bypasses of issue 11 item 2, over real smtplib sessions (STARTTLS + AUTH on
loopback), and what IMAP (imaplib) and the web API show of the same header blocks.

Before: the stdlib parser skipped ``From : Alice <…>`` (space before the colon), and stopped reading the header at
``From\\t: …`` or at a colon-less line, so the sender check never saw the second From while IMAP's ENVELOPE (and
other readers) did. Now one header reader (courrier/mail/headers.py) decides which fields exist for submission, IMAP
and the web alike: every From it finds must be the account's (553 5.7.1), and a line that is no field is refused
(550 5.6.0)."""

from __future__ import annotations

import imaplib
import smtplib
import time

import httpx
import pytest

from tests.e2e.msa_support import insecure_context, messages, wait_for_messages
from tests.support import Server

CAROL, ALICE, ADMIN = "carol@example.test", "alice@example.test", "admin@example.test"
PW = {CAROL: "carol-pw", ALICE: "alice-pw", ADMIN: "admin-pw"}

REAL = b"From: Carol <carol@example.test>\r\n"
FORGED = b"Alice <alice@example.test>\r\n"
BYPASSES = {  # the audit's three header blocks: (header lines, expected reply)
    "obsolete From before the real one": (b"From : " + FORGED + REAL, (553, b"5.7.1")),
    "obsolete From with a tab, after the real one": (REAL + b"From\t: " + FORGED, (553, b"5.7.1")),
    "a colon-less line, then a second From": (REAL + b"this line has no colon\r\nFrom: " + FORGED, (550, b"5.6.0")),
}
SAME_CLASS = {  # the same hole through other doors
    "obsolete Sender": (REAL + b"Sender \t: " + FORGED, (553, b"5.7.1")),
    "upper-case obsolete FROM after a fold": (REAL + b"X-A: a\r\n b\r\nFROM  : " + FORGED, (553, b"5.7.1")),
    "a lone CR before a second From": (b"From: Carol <carol@example.test>\rFrom: " + FORGED, (550, b"5.6.0")),
    "a continuation line before any field": (b" folded first\r\n" + REAL, (550, b"5.6.0")),
    "an 8-bit field name": (REAL + b"Fr\xc3\xb6m: " + FORGED, (550, b"5.6.0")),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("msa35b"), listeners=("submission", "smtp", "imap", "http"),
               top={"trust_loopback": False})
    with s.accounts() as accounts:
        for user, pw in PW.items():
            accounts.add(user, pw, is_admin=user == ADMIN)
    s.start()
    yield s
    s.stop()


def submit(server, head: bytes, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.starttls(context=insecure_context())
        c.login(CAROL, PW[CAROL])
        c.sendmail(CAROL, [ALICE], head + f"To: {ALICE}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode())


@pytest.mark.parametrize("case", [*BYPASSES, *SAME_CLASS])
def test_submission_refuses_every_hidden_from(server, case):
    head, (code, enhanced) = {**BYPASSES, **SAME_CLASS}[case]
    with pytest.raises(smtplib.SMTPDataError) as e:
        submit(server, head, f"bypass {case}")
    assert (e.value.smtp_code, e.value.smtp_error[:5]) == (code, enhanced), e.value.smtp_error
    assert not any(f"bypass {case}".encode() in m for m in messages(server, ALICE))


def test_an_obsolete_from_of_ones_own_is_accepted_and_shown(server):
    """RFC 5322 §4.5: the obsolete form is read, not refused, when it names the sender's own address."""
    submit(server, b"From  : Carol <carol@example.test>\r\n", "own obsolete from")
    assert wait_for_messages(server, ALICE, 1)
    c = imap(server)
    [seq] = c.search(None, "SUBJECT", '"own obsolete from"')[1][0].split()
    assert b'(("Carol" NIL "carol" "example.test"))' in envelope(c, seq)
    c.logout()


def imap(server) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    c.starttls(ssl_context=insecure_context())  # trust_loopback = false: loopback is treated as remote
    c.login(ALICE, PW[ALICE])
    c.select("INBOX", readonly=True)
    return c


def envelope(c: imaplib.IMAP4, seq: bytes) -> bytes:
    typ, data = c.fetch(seq.decode(), "(ENVELOPE)")
    assert typ == "OK"
    return data[0] if isinstance(data[0], bytes) else b"".join(data[0])


@pytest.fixture(scope="module")
def delivered(server):
    """The audit's header blocks arriving from outside (the MX does not judge header syntax), one after the other:
    case number → sequence number (found by arrival, not by SEARCH, which reads the fields under test)."""
    c = imap(server)
    before = int(c.select("INBOX", readonly=True)[1][0])
    for i, (head, _) in enumerate(BYPASSES.values()):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
            s.sendmail("someone@else.test", [ALICE], head + f"To: {ALICE}\r\nSubject: via mx {i}\r\n\r\nx\r\n".encode())
        deadline = time.monotonic() + 10
        while int(c.select("INBOX", readonly=True)[1][0]) < before + i + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    c.logout()
    return {i: str(before + i + 1).encode() for i in range(3)}


def test_envelope_shows_every_from_as_the_reader_sees_it(server, delivered):
    """The ENVELOPE's from list holds every From field the reader finds, in order (as Dovecot does): the first is
    the obsolete one when it comes first, and a From after a junk line or a tab is not hidden."""
    alice = b'("Alice" NIL "alice" "example.test")'
    carol = b'("Carol" NIL "carol" "example.test")'
    c = imap(server)
    assert b"ENVELOPE (NIL \"via mx 0\" (" + alice + carol + b")" in envelope(c, delivered[0])
    assert b"ENVELOPE (NIL \"via mx 1\" (" + carol + alice + b")" in envelope(c, delivered[1])
    assert b"ENVELOPE (NIL \"via mx 2\" (" + carol + alice + b")" in envelope(c, delivered[2])
    found = c.search(None, "FROM", "alice@example.test")[1][0].split()
    assert sorted(found) == sorted(delivered.values())
    c.logout()


def test_web_view_reads_the_same_fields(server, delivered):
    """The web API in server mode (admin inspector): the summary's From is the first From the reader finds, and the
    message's headers list every From."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.ports['http']}", auth=(ADMIN, PW[ADMIN]), timeout=10) as h:
        r = h.get("/api/v1/messages", params={"mailbox": f"{ALICE}/INBOX", "limit": 100})
        assert r.status_code == 200, r.text
        by_subject = {m["Subject"]: m for m in r.json()["messages"]}
        assert by_subject["via mx 0"]["From"]["Address"] == ALICE
        assert by_subject["via mx 2"]["From"]["Address"] == CAROL
        r = h.get(f"/api/v1/message/{by_subject['via mx 2']['ID']}/headers")
        assert r.status_code == 200, r.text
        assert r.json()["From"] == ["Carol <carol@example.test>", "Alice <alice@example.test>"]
        r = h.get(f"/api/v1/message/{by_subject['via mx 1']['ID']}")
        assert r.status_code == 200 and r.json()["Subject"] == "via mx 1"


def test_capture_api_reads_the_same_fields(server_factory):
    """Capture mode keeps every message (it never refuses for content); its API shows the From the reader finds
    first, and a From after a junk line is not lost to the stdlib's end-of-header guess."""
    from tests.e2e.capture_support import send

    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    first = send(srv.ports["smtp"], ["bob@example.test"],
                 b"From : Alice <alice@sender.test>\r\nFrom: carol@sender.test\r\nSubject: c1\r\n\r\nx\r\n")
    second = send(srv.ports["smtp"], ["bob@example.test"],
                  b"Subject: c2\r\nthis line has no colon\r\nFrom: Alice <alice@sender.test>\r\n\r\nx\r\n")
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10) as h:
        m = h.get(f"/api/v1/message/{first}").json()
        assert m["From"] == {"Name": "Alice", "Address": "alice@sender.test"}
        assert h.get(f"/api/v1/message/{first}/headers").json()["From"] == [
            "Alice <alice@sender.test>", "carol@sender.test"]
        m = h.get(f"/api/v1/message/{second}").json()
        assert m["From"] == {"Name": "Alice", "Address": "alice@sender.test"} and m["Subject"] == "c2"
        listed = {x["ID"]: x for x in h.get("/api/v1/messages").json()["messages"]}
        assert listed[first]["From"]["Address"] == listed[second]["From"]["Address"] == "alice@sender.test"
