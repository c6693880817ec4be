"""Scenario 08: ``RCPT TO:<Postmaster>`` without a domain is always accepted (RFC 5321 §4.5.1, §4.1.1.3).

The hostname (``mx.example.test``) is deliberately not a local domain (``example.test``, ``other.test``): the bare
Postmaster stands for the postmaster of the primary domain, delivered like ``postmaster@`` — to the first admin
account. smtplib on loopback, MX and submission roles, any letter case.
"""

from __future__ import annotations

import email.message
import smtplib
import uuid

import pytest

from tests.support import Server

ADMIN, CAROL = "admin@other.test", "carol@example.test"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("postmaster"), listeners=("smtp", "submission"),
               domains=("example.test", "other.test"), hostname="mx.example.test")
    s.add_user(CAROL, "pw")
    s.add_user(ADMIN, "pw", "--admin")  # not the first account: the admin one gets postmaster mail
    s.start()
    yield s
    s.stop()


def received(srv: Server, account: str, subject: str) -> list[email.message.Message]:
    return [m for m in srv.parsed(account) if m["Subject"] == subject]


@pytest.mark.parametrize("rcpt", ["Postmaster", "postmaster", "POSTMASTER"])
def test_mx_accepts_a_bare_postmaster(srv, rcpt):
    subject = f"to {rcpt} {uuid.uuid4()}"
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        c.ehlo("client.else.test")
        code, text = c.rcpt(rcpt) if c.mail("alice@else.test")[0] == 250 else (0, b"MAIL refused")
        assert code == 250, text
        c.rset()
        refused = c.sendmail("alice@else.test", [rcpt],
                             f"From: alice@else.test\r\nSubject: {subject}\r\n\r\nhello postmaster\r\n")
    assert refused == {}
    [msg] = received(srv, ADMIN, subject)
    assert msg["Delivered-To"] == ADMIN
    assert received(srv, CAROL, subject) == []


def test_submission_accepts_a_bare_postmaster(srv):
    subject = f"submitted to Postmaster {uuid.uuid4()}"
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as c:
        c.login(CAROL, "pw")
        assert c.sendmail(CAROL, ["Postmaster"], f"From: {CAROL}\r\nSubject: {subject}\r\n\r\nhi\r\n") == {}
    assert len(received(srv, ADMIN, subject)) == 1


def test_other_bare_names_are_still_refused(srv):
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        c.ehlo("client.else.test")
        c.mail("alice@else.test")
        assert c.rcpt("carol")[0] == 501  # only Postmaster may come without a domain
        assert c.rcpt("postmaster@mx.example.test")[0] == 554  # the hostname is no local domain: no relay
