"""Scenario 54: capture mode serves the captured messages over IMAP and POP3, to any credentials when
``[capture] accept_any_auth`` (the default), and only to real accounts when it is false."""

from __future__ import annotations

import imaplib
import poplib

import pytest

from tests.access.clients import deliver, maildir_files, wait_for


def test_any_login_reads_the_capture_maildir(server_factory):
    s = server_factory(listeners=("smtp", "imap", "pop3"), capture=True)
    s.start()
    deliver(s, b"Subject: captured\r\nFrom: app@else.test\r\n\r\ncaptured body\r\n.dot line\r\n",
            rcpt="anyone@anywhere.test")
    capture = s.data / "capture"
    files = wait_for(lambda: maildir_files(capture), what="the captured message")
    expected = files[0].read_bytes().replace(b"\n", b"\r\n")

    c = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=10)
    c.login("whoever", "whatever")
    typ, data = c.select("INBOX")
    assert int(data[0]) == 1
    typ, data = c.fetch("1", "(RFC822.SIZE BODY[])")
    assert data[0][1] == expected and f"RFC822.SIZE {len(expected)}".encode() in data[0][0]
    c.logout()

    p = poplib.POP3("127.0.0.1", s.ports["pop3"], timeout=10)
    p.user("someone-else")
    p.pass_("x")
    resp, lines, _ = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == expected
    p.quit()


def test_without_accept_any_auth_only_accounts_log_in(server_factory):
    s = server_factory(listeners=("imap",), capture=True, sections={"capture": {"accept_any_auth": False}})
    s.add_user("dev@example.test", "devpass")
    s.start()
    c = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login("dev@example.test", "nope")
    assert c.login("dev@example.test", "devpass")[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()
