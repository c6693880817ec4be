"""Scenario 48: NOTIFY=SUCCESS (RFC 3461) is answered — a "delivered" DSN (RFC 3464, Status 2.0.0) when the message
lands in a local mailbox (MX and submission roles, §5.2.3), a "relayed" DSN when the next hop does not offer DSN
(Postfix's smtp-sink -N, §5.2.2), nothing from us when the next hop offers DSN (NOTIFY passed on, §5.2.1), and never
a DSN to the null sender. The sender reads it in its own mailbox, within seconds."""

from __future__ import annotations

import poplib
import smtplib
import time

import pytest

from tests.client.sink import dumped, smtp_sink
from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import inbox, make_sender, point_mx, submit, wait_for
from tests.support import Server

FAST = {"retry_first": "1s", "retry_max": "2s", "max_lifetime": "1h", "delay_notice": "1h", "connect_timeout": "2s"}


def dsns(server, address):
    return [m for m in inbox(server, address) if m.get_content_type() == "multipart/report"]


def report(m) -> tuple[str, str, str]:
    """(delivery-status text, returned part's type, human part)."""
    human, status, returned = list(m.iter_parts())
    assert status.get_content_type() == "message/delivery-status"
    return status.as_string(), returned.get_content_type(), human.get_content()


@pytest.fixture(scope="module")
def a(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("dsn48"), listeners=("smtp", "submission", "pop3"), domains=("a.test",),
               hostname="mx.a.test", sections={"delivery": FAST})
    for u in ("alice", "bob", "carol", "dave", "erin"):
        s.add_user(f"{u}@a.test")
    with s:
        yield s


def test_mx_local_delivery_sends_a_delivered_dsn(a):
    t0 = time.monotonic()
    with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30) as c:
        c.ehlo("client.test")
        refused = c.sendmail("alice@a.test", ["bob@a.test"],
                             b"From: alice@a.test\r\nTo: bob@a.test\r\nSubject: tell me\r\n\r\nsecret body\r\n",
                             mail_options=["ENVID=mx-48"],
                             rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@a.test"])
    assert refused == {}
    [m] = wait_for(lambda: dsns(a, "alice@a.test"), timeout=10, what="a delivered DSN for alice")
    assert time.monotonic() - t0 < 5  # "within seconds"
    assert m["Return-Path"] == "<>" and m["Auto-Submitted"] == "auto-replied"
    status, returned_type, human = report(m)
    assert "Action: delivered" in status and "Status: 2.0.0" in status
    assert "Final-Recipient: rfc822; bob@a.test" in status and "Original-Recipient: rfc822;bob@a.test" in status
    assert "Original-Envelope-Id: mx-48" in status and "Remote-MTA" not in status
    assert returned_type == "text/rfc822-headers" and "delivered" in human  # the header only: no RET=FULL
    assert "secret body" not in m.as_string()
    assert [str(x["Subject"]) for x in inbox(a, "bob@a.test")] == ["tell me"]


def test_submission_local_delivery_reaches_the_sender_over_pop3(a):
    assert submit(a, "carol@a.test", ["dave@a.test", "erin@a.test"], "to two", rcpt_options=("NOTIFY=SUCCESS",),
                  mail_options=("RET=FULL",)) == {}
    [m] = wait_for(lambda: dsns(a, "carol@a.test"), timeout=10, what="a delivered DSN for carol")
    status, returned_type, _ = report(m)
    assert status.count("Action: delivered") == 2 and "dave@a.test" in status and "erin@a.test" in status
    assert returned_type == "message/rfc822"  # RET=FULL
    c = poplib.POP3("127.0.0.1", a.ports["pop3"], timeout=30)
    try:
        c.user("carol@a.test")
        c.pass_("secret")
        lines = b"\r\n".join(c.retr(1)[1])
    finally:
        c.quit()
    assert b"multipart/report" in lines and b"Action: delivered" in lines


def test_no_success_dsn_unless_asked_nor_to_the_null_sender(a):
    with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=30) as c:
        c.ehlo("client.test")
        c.sendmail("dave@a.test", ["bob@a.test"], b"Subject: no notify\r\n\r\nx\r\n")
        c.sendmail("", ["bob@a.test"], b"Subject: from the null sender\r\n\r\nx\r\n", rcpt_options=["NOTIFY=SUCCESS"])
        c.sendmail("erin@a.test", ["bob@a.test"], b"Subject: never\r\n\r\nx\r\n", rcpt_options=["NOTIFY=NEVER"])
    wait_for(lambda: {"no notify", "from the null sender", "never"} <= {str(x["Subject"]) for x in
                                                                       inbox(a, "bob@a.test")}, what="bob's copies")
    time.sleep(1.5)  # more than a queue pass: a DSN, if one were made, would be in a mailbox by now
    assert not dsns(a, "dave@a.test") and not dsns(a, "erin@a.test")
    assert "to=<>" not in a.log() and 'to="<>"' not in a.log()


@pytest.fixture
def dns():
    with FakeDNS() as d:
        point_mx(d, "sink.test")
        yield d


def test_relay_to_a_peer_without_dsn_sends_a_relayed_dsn(server_factory, dns):
    with smtp_sink("-N", dump=True) as (port, dump):  # -N: smtp-sink does not announce DSN
        s = make_sender(server_factory, dns, port).start()
        submit(s, "alice@a.test", ["far@sink.test"], "relayed far", rcpt_options=("NOTIFY=SUCCESS",))
        assert b"NOTIFY" not in dumped(dump, 1)[0]  # not passed to a peer that does not know it
        [m] = wait_for(lambda: dsns(s, "alice@a.test"), timeout=10, what="a relayed DSN for alice")
    status, returned_type, human = report(m)
    assert "Action: relayed" in status and "Status: 2.0.0" in status
    assert "Final-Recipient: rfc822; far@sink.test" in status and "Remote-MTA: dns; mx.sink.test" in status
    assert m["Subject"] == "Relayed Mail Delivery Report" and "do not report delivery status" in human
    assert returned_type == "text/rfc822-headers"


def test_relay_to_a_peer_with_dsn_passes_notify_on_and_reports_nothing(server_factory, dns):
    with smtp_sink(dump=True) as (port, dump):  # smtp-sink announces DSN by default
        s = make_sender(server_factory, dns, port).start()
        submit(s, "alice@a.test", ["far@sink.test"], "their job", rcpt_options=("NOTIFY=SUCCESS",))
        data = dumped(dump, 1)[0]
        assert b"X-Rcpt-Args: <far@sink.test> NOTIFY=SUCCESS" in data  # RFC 3461 §5.2.1
        wait_for(lambda: "nothing queued" in s.cli("queue", "list").stdout, what="empty queue")
        time.sleep(1.0)
    assert not dsns(s, "alice@a.test")
