"""Scenario 44: Postfix's smtp-sink — an SMTP server someone else wrote — accepts what courrier relays: several
recipients in one transaction, and 8-bit content converted to quoted-printable for a peer without 8BITMIME."""

import smtplib

import pytest

from tests.client.sink import dumped, smtp_sink
from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import make_sender, point_mx, submit, wait_for


@pytest.fixture
def dns():
    with FakeDNS() as d:
        point_mx(d, "sink.test")
        yield d


def test_smtp_sink_accepts_relayed_mail(server_factory, dns):
    with smtp_sink(dump=True) as (port, dump):
        a = make_sender(server_factory, dns, port).start()
        submit(a, "alice@a.test", ["one@sink.test", "two@sink.test"], "to the sink", body="line\n.dot line\n")
        files = dumped(dump, 1)
        assert len(files) == 1  # both recipients in one transaction (RFC 5321 §3.3)
        data = files[0]
        assert b"one@sink.test" in data and b"two@sink.test" in data and b"alice@a.test" in data
        assert b"Subject: to the sink" in data
        assert b"\n.dot line" in data  # dot-stuffed on the wire, unstuffed by the peer
        wait_for(lambda: "nothing queued" in a.cli("queue", "list").stdout, what="empty queue")
        a.wait_log("delivery.sent")


def test_peer_without_8bitmime_gets_quoted_printable(server_factory, dns):
    with smtp_sink("-8", dump=True) as (port, dump):
        a = make_sender(server_factory, dns, port).start()
        body = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCafé crème\r\n"
        with smtplib.SMTP("127.0.0.1", a.ports["submission"]) as c:
            c.login("alice@a.test", "secret")
            raw = ("From: alice@a.test\r\nTo: x@sink.test\r\nSubject: accents\r\nMIME-Version: 1.0\r\n" + body)
            c.sendmail("alice@a.test", ["x@sink.test"], raw.encode(), mail_options=["BODY=8BITMIME"])
        data = dumped(dump, 1)[0]
        assert b"Content-Transfer-Encoding: quoted-printable" in data
        assert b"Caf=C3=A9 cr=C3=A8me" in data
        assert data.isascii()  # nothing 8-bit went to a peer that did not offer 8BITMIME (RFC 6152 §3)
