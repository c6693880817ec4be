"""Scenario 01: the receiving server stores mail for a local account, as smtplib and swaks see it."""

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
    msgs = mx.parsed("bob@example.test")
    assert len(msgs) == 1
    m = msgs[0]
    assert m["Subject"] == "hi"
    assert m["Return-Path"] == "<alice@else.test>"
    assert m["Delivered-To"] == "bob@example.test"
    assert "by mx.example.test (courrier) with ESMTP" in m["Received"]
