"""Scenario 40: a message submitted on a.test is relayed by MX lookup to b.test and lands in a mailbox there —
two real courrier instances and a dnslib DNS server; also the second MX when the first refuses connections."""

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import inbox, make_receiver, make_sender, point_mx, submit, wait_for
from tests.support import run_cli


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_submitted_message_arrives_on_b(server_factory, dns):
    b = make_receiver(server_factory).start()
    point_mx(dns, "b.test")
    a = make_sender(server_factory, dns, b.ports["smtp"]).start()
    assert submit(a, "alice@a.test", ["bob@b.test"], "across the net") == {}
    msgs = wait_for(lambda: inbox(b, "bob@b.test"), what="delivery on b.test")
    m = msgs[0]
    assert m["Subject"] == "across the net"
    assert m["Return-Path"] == "<alice@a.test>"
    received = m.get_all("Received")
    # b's hop (from a's MTA) on top of a's hop (from the MUA, authenticated)
    assert "by mx.b.test" in received[0] and "mx.a.test" in received[0]
    assert "using TLSv1." in received[0]  # opportunistic STARTTLS (RFC 3207) to a peer that offers it
    assert "by mx.a.test" in received[1] and "authenticated sender: alice@a.test" in received[1]
    wait_for(lambda: "nothing queued" in a.cli("queue", "list").stdout.lower(), what="empty queue")
    qid = next(line.split("qid=")[1].split()[0] for line in a.log().splitlines() if "queue.queued" in line)
    show = a.cli("queue", "show", qid).stdout
    assert "sent" in show and "250" in show and "mx.b.test" in show and "TLSv1." in show


def test_second_mx_used_when_first_refuses(server_factory, dns):
    b = make_receiver(server_factory).start()
    dns.set("b.test", {"MX": [(10, "mx1.b.test"), (20, "mx2.b.test")]})
    dns.set("mx1.b.test", {"A": ["127.0.0.2"]})  # nothing listens there: connection refused
    dns.set("mx2.b.test", {"A": ["127.0.0.1"]})
    a = make_sender(server_factory, dns, b.ports["smtp"]).start()
    submit(a, "alice@a.test", ["bob@b.test"], "via the backup MX")
    wait_for(lambda: inbox(b, "bob@b.test"), what="delivery through mx2")
    qid = next(line.split("qid=")[1].split()[0] for line in a.log().splitlines() if "queue.queued" in line)
    show = a.cli("queue", "show", qid).stdout
    lines = [x for x in show.splitlines() if "mx1.b.test" in x or "mx2.b.test" in x]
    assert "deferred" in lines[0] and "mx1.b.test" in lines[0]
    assert "sent" in lines[1] and "mx2.b.test" in lines[1]


def test_outbound_mail_is_dkim_signed(server_factory, dns):
    b = make_receiver(server_factory).start()
    point_mx(dns, "b.test")
    a = make_sender(server_factory, dns, b.ports["smtp"])
    a.cli("dkim", "keygen", "a.test", "--selector", "s1")
    a.start()
    submit(a, "alice@a.test", ["bob@b.test"], "signed by submission")
    p = run_cli("sendmail", "-i", "-f", "alice@a.test", "bob@b.test", "--config", str(a.config),
                input="From: alice@a.test\nSubject: signed by sendmail\n\nbody\n")
    assert p.returncode == 0
    msgs = wait_for(lambda: len(inbox(b, "bob@b.test")) == 2 and inbox(b, "bob@b.test"), what="both messages")
    for m in msgs:
        sig = m["DKIM-Signature"]
        assert sig and "d=a.test" in sig.replace(" ", "") and "s=s1" in sig.replace(" ", ""), m["Subject"]
