"""Trace fields (RFC 5321 §4.4) from the one envelope: a receipt over the network names its client; a receipt
without one (the inspector's release) names only our host; delivery out of the queue adds no Received: line."""

from courrier.mail.envelope import Envelope, Hop, Recipient, TLSInfo
from courrier.mail.path import parse_address
from courrier.mail.trace import delivery_trace, received


def env(**kw) -> Envelope:
    return Envelope(mail_from=parse_address("a@x.test"), rcpts=[Recipient(parse_address("b@y.test"))],
                    queue_id="Q1", received_at=0.0, **kw)


def test_network_hop_names_client_tls_and_user():
    hop = Hop(by="mx.y.test", listener="submission", protocol="ESMTPSA", client_ip="2001:db8::1", helo="c.x.test",
              tls=TLSInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256), user="a@x.test")
    line = received(hop, env(smtputf8=True), "b@y.test")
    assert line.startswith("Received: from c.x.test (c.x.test [IPv6:2001:db8::1])\n")
    assert "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))" in line
    assert "(authenticated sender: a@x.test)" in line
    assert "by mx.y.test (courrier) with UTF8SMTPSA id Q1" in line and "for <b@y.test>;" in line


def test_hop_without_client_invents_no_peer():
    line = received(Hop(by="mx.y.test", listener="release"), env(), None)
    assert line.startswith("Received: by mx.y.test (courrier release) id Q1\n")
    assert "from" not in line and "127.0.0.1" not in line and "[" not in line


def test_delivery_out_of_the_queue_writes_no_received_line():
    assert delivery_trace(env(), None, "b@y.test", "b@y.test") == b"Return-Path: <a@x.test>\nDelivered-To: b@y.test\n"
    hop = Hop(by="mx.y.test", listener="smtp", protocol="SMTP", client_ip="192.0.2.1")
    assert b"Received: from unknown (unknown [192.0.2.1])" in delivery_trace(env(), hop, "b@y.test", "b@y.test")
