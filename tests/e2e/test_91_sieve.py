"""Scenario 91: Sieve (RFC 5228) end to end. A script uploaded and activated with the real ManageSieve client
``sieve-connect`` (over STARTTLS) files mail into a folder it creates with flags, rejects mail at SMTP time
(smtplib gets 550 5.7.1 with the script's reason), flags mail in INBOX and answers it with a vacation reply (once
per sender, RFC 3834 fields) — the mail sent with smtplib, read back over IMAP with imaplib. A script that breaks
at run time loses nothing: the message lands in INBOX with a note about the error."""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import smtplib
import ssl
import subprocess

import pytest

from tests.access.clients import wait_for

ME, BOB, PASSWORD = "me@example.test", "bob@example.test", "secret"

SCRIPT = r"""require ["fileinto", "mailbox", "imap4flags", "reject", "vacation", "variables"];
if header :contains "subject" "spam" {
    reject "No spam here, thank you.";
    stop;
}
if header :matches "subject" "[*] *" {
    fileinto :create :flags "\\Flagged $list" "Lists.${1}";
    stop;
}
if header :contains "subject" "urgent" {
    addflag "\\Flagged";
}
vacation :days 1 :subject "Away until Monday" "I am away; your mail will wait.";
"""


@pytest.fixture
def srv(server_factory):
    s = server_factory(listeners=("smtp", "submission", "imap", "managesieve"))
    for who in (ME, BOB):
        s.add_user(who, PASSWORD)
    return s.start()


def sieve_connect(srv, *args: str, cwd) -> subprocess.CompletedProcess[str]:
    r, w = os.pipe()
    os.write(w, (PASSWORD + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(["sieve-connect", "-s", "127.0.0.1", "-p", str(srv.ports["managesieve"]), "-u", ME,
                               "--passwordfd", str(r), "--notlsverify", *args], pass_fds=(r,), cwd=cwd,
                              capture_output=True, text=True, timeout=30)
    finally:
        os.close(r)


def send(srv, subject: str, sender: str = BOB) -> None:
    msg = (f"From: Bob <{sender}>\r\nTo: Me <{ME}>\r\nSubject: {subject}\r\n"
           f"Message-ID: <{abs(hash(subject))}@example.test>\r\n\r\nHello.\r\n")
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
        s.sendmail(sender, [ME], msg)


def fetch(srv, user: str, folder: str) -> list[tuple[email.message.EmailMessage, bytes]]:
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    try:
        c.login(user, PASSWORD)
        typ, _ = c.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            return []
        _, data = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
        out = []
        for item in data:
            if isinstance(item, tuple):
                out.append((email.message_from_bytes(item[1], policy=email.policy.default), item[0]))
        return out
    finally:
        c.logout()


def test_sieve_files_rejects_flags_and_answers(srv, tmp_path):
    (tmp_path / "filter.sieve").write_text(SCRIPT)
    up = sieve_connect(srv, "--upload", "--localsieve", "filter.sieve", "--remotesieve", "filter", cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    act = sieve_connect(srv, "--activate", "--remotesieve", "filter", cwd=tmp_path)
    assert act.returncode == 0, act.stdout + act.stderr

    # fileinto :create :flags
    send(srv, "[dev] the build is green")
    [(msg, meta)] = fetch(srv, ME, "Lists.dev")
    assert msg["Subject"] == "[dev] the build is green" and b"\\Flagged" in meta and b"$list" in meta

    # reject at SMTP time (RFC 5429 §2.1.1): 550 5.7.1 with the reason
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "cheap spam for you")
    assert e.value.smtp_code == 550 and b"5.7.1 No spam here, thank you." in e.value.smtp_error

    # the same over submission, for a local recipient (RFC 5429 §2.1.1: still at SMTP time)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as s:
        s.starttls(context=ctx)
        s.login(BOB, PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail(BOB, [ME], f"From: {BOB}\r\nTo: {ME}\r\nSubject: more spam\r\n\r\nx\r\n")
    assert e.value.smtp_code == 550 and b"No spam here" in e.value.smtp_error

    # addflag, then vacation: kept in INBOX flagged; Bob gets one reply (RFC 5230 §4.2: once per :days)
    send(srv, "urgent: lunch?")
    send(srv, "urgent: lunch? (again)")
    inbox = fetch(srv, ME, "INBOX")
    assert sorted(str(m["Subject"]) for m, _ in inbox) == ["urgent: lunch?", "urgent: lunch? (again)"]
    assert all(b"\\Flagged" in meta for _, meta in inbox)
    replies = wait_for(lambda: fetch(srv, BOB, "INBOX"), what="the vacation reply")
    [(reply, _)] = replies
    assert reply["Subject"] == "Away until Monday" and reply["Auto-Submitted"].startswith("auto-replied")
    assert reply["In-Reply-To"] == inbox[0][0]["Message-ID"] and reply["Return-Path"] == "<>"
    assert reply.get_content().strip() == "I am away; your mail will wait."
    assert len(fetch(srv, BOB, "INBOX")) == 1


def test_broken_script_loses_nothing(srv, tmp_path):
    """A run-time error (here a regex that does not compile) files the message in INBOX and reports it once."""
    srv.cli("sieve", "put", ME, "broken", "-", "--activate",
            input='require ["regex", "fileinto"];\nif header :regex "subject" "([" { fileinto "X"; }\n')
    send(srv, "first")
    send(srv, "second")
    subjects = sorted(str(m["Subject"]) for m, _ in fetch(srv, ME, "INBOX"))
    assert "first" in subjects and "second" in subjects
    assert len([s for s in subjects if "failed" in s]) == 1
    srv.wait_log("sieve.error")
