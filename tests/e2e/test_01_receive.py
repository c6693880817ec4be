"""Scenario 01: the receiving server stores mail for a local account, as smtplib and swaks see it."""

import mailbox
import smtplib

import pytest


@pytest.fixture
def mx(server_factory):
    s = server_factory()
    s.add_user("bob@example.test")
    return s.start()


def test_smtplib_delivers_to_maildir(mx):
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"]) as c:
        c.ehlo("client.test")
        assert c.has_extn("pipelining") and c.has_extn("chunking") and c.has_extn("smtputf8")
        refused = c.sendmail("alice@else.test", ["bob@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
        assert refused == {}
    md = mailbox.Maildir(mx.maildir("bob@example.test"), create=False)
    msgs = list(md)
    assert len(msgs) == 1
    m = msgs[0]
    assert m["Subject"] == "hi"
    assert m["Return-Path"] == "<alice@else.test>"
    assert m["Delivered-To"] == "bob@example.test"
    assert "by mx.example.test (courrier) with ESMTP" in m["Received"]
