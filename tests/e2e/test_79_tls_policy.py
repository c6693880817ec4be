"""Scenario 79: outbound TLS policy — MTA-STS (RFC 8461) and DANE (RFC 7672) — between two real courrier instances.

a.test sends; one receiving courrier (STARTTLS with a certificate from a test CA naming mx.b.test and mx.i.test)
takes mail for several domains, each set up in the fake DNS (tests/dnsfake.py) to exercise one policy:

    b.test  MTA-STS enforce, MX listed, certificate valid          → delivered, tls_policy=mta-sts-enforce
    c.test  MTA-STS enforce, MX not listed                        → deferred (4.7.5), stays queued
    d.test  MTA-STS enforce, certificate does not name the MX      → deferred (4.7.5)
    e.test  MTA-STS testing, MX not listed, certificate wrong      → delivered, what enforce would refuse logged
    f.test  DANE-EE (3 1 1) TLSA with AD                           → delivered, tls_policy=dane
    g.test  DANE TLSA with AD that matches nothing                 → deferred (4.7.5)
    h.test  the same TLSA without AD                               → ignored: delivered, opportunistic
    i.test  DANE-TA (2 1 1, the test CA) with AD                   → delivered, tls_policy=dane

The policies are served by a loopback HTTPS server (tests/testca.py) whose certificate the same test CA signed, and
which a.test trusts through ``[delivery] tls_ca_file``; ``mta_sts_port`` points the fetch at it. Last, a.test is
restarted with the policy server answering 404 to everything: the cached policies still apply.
"""

from __future__ import annotations

import hashlib
import re
import smtplib

import pytest

from courrier.delivery.dane import selected
from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, inbox, message, wait_for
from tests.support import Server
from tests.testca import PolicyServer, TestCA

DOMAINS = ("b.test", "c.test", "d.test", "e.test", "f.test", "g.test", "h.test", "i.test")


def policy(mode: str, *mx: str) -> str:
    return "version: STSv1\nmode: {}\n{}max_age: 86400\n".format(mode, "".join(f"mx: {m}\n" for m in mx))


@pytest.fixture(scope="module")
def world(tmp_path_factory, server_store):
    tmp = tmp_path_factory.mktemp("tlspolicy")
    ca = TestCA()
    leaf = ca.issue(["mx.b.test", "mx.i.test"])
    cert, key = leaf.write(tmp / "pki", "mx")
    spki = hashlib.sha256(selected(leaf.cert, 1)).hexdigest()
    ca_spki = hashlib.sha256(selected(ca.cert, 1)).hexdigest()
    servers: list[Server] = []
    with FakeDNS() as dns, PolicyServer(ca, [f"mta-sts.{d}" for d in DOMAINS], tmp / "web") as web:
        (tmp / "b").mkdir()
        b = Server(tmp / "b", listeners=("smtp",), domains=DOMAINS, hostname="mx.b.test",
                   sections={"tls": {"cert": str(cert), "key": str(key)}})
        servers.append(b)
        for d in DOMAINS:
            b.add_user(f"bob@{d}")
        b.start()
        port = b.ports["smtp"]
        for d in DOMAINS:
            dns.set(d, {"MX": [(10, f"mx.{d}")]})
            dns.set(f"mx.{d}", {"A": ["127.0.0.1"]})
            dns.set(f"mta-sts.{d}", {"A": ["127.0.0.1"]})
        sts = {"b.test": policy("enforce", "mx.b.test"), "c.test": policy("enforce", "other.c.test"),
               "d.test": policy("enforce", "*.d.test"), "e.test": policy("testing", "other.e.test")}
        for d, text in sts.items():
            dns.set(f"_mta-sts.{d}", {"TXT": ["v=STSv1; id=20260101"]})
            web.serve(text, host=f"mta-sts.{d}")
        tlsa = f"_{port}._tcp.mx"  # RFC 7672 §3: the MX port (the test's, not 25)
        dns.set(f"{tlsa}.f.test", {"TLSA": [(3, 1, 1, spki)], "AD": True})
        dns.set(f"{tlsa}.g.test", {"TLSA": [(3, 1, 1, "00" * 32)], "AD": True})
        dns.set(f"{tlsa}.h.test", {"TLSA": [(3, 1, 1, "00" * 32)]})
        dns.set(f"{tlsa}.i.test", {"TLSA": [(2, 1, 1, ca_spki)], "AD": True})
        (tmp / "a").mkdir()
        a = Server(tmp / "a", listeners=("smtp", "submission"), domains=("a.test",), hostname="mx.a.test",
                   sections={"delivery": {"nameservers": [dns.address], "mx_port": port, **FAST,
                                          "mta_sts_port": web.port, "tls_ca_file": str(ca.write(tmp / "trust"))}})
        servers.append(a)
        a.add_user("alice@a.test")
        a.start()
        try:
            yield a, b, web
        finally:
            for s in servers:
                s.stop()


def send(a: Server, domain: str, subject: str) -> str:
    """Submits one message to bob@DOMAIN; its queue id."""
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as c:
        c.login("alice@a.test", "secret")
        c.mail("alice@a.test")
        c.rcpt(f"bob@{domain}")
        code, text = c.data(message("alice@a.test", [f"bob@{domain}"], subject).as_bytes())
    assert code == 250, text
    return re.search(rb"queued as (\S+)", text).group(1).decode()


def attempts(a: Server, qid: str) -> list[str]:
    return [line for line in a.log().splitlines() if f"qid={qid}" in line and " delivery." in line]


def delivered(a: Server, b: Server, qid: str, domain: str, subject: str) -> str:
    wait_for(lambda: any(m["Subject"] == subject for m in inbox(b, f"bob@{domain}")), what=f"delivery to {domain}")
    return wait_for(lambda: next((x for x in attempts(a, qid) if "delivery.sent" in x), None), what="the log line")


def deferred(a: Server, qid: str) -> str:
    return wait_for(lambda: next((x for x in attempts(a, qid) if "delivery.deferred" in x), None),
                    what="a deferral")


def show(a: Server, qid: str) -> str:
    return a.cli("queue", "show", qid).stdout


def test_enforce_with_a_valid_certificate_delivers(world):
    a, b, web = world
    qid = send(a, "b.test", "enforce, good certificate")
    line = delivered(a, b, qid, "b.test", "enforce, good certificate")
    assert "tls_policy=mta-sts-enforce" in line and "tls=TLSv1." in line
    assert "tls_policy=mta-sts-enforce" in show(a, qid)
    a.wait_log("mta_sts.policy domain=b.test id=20260101 mode=enforce")
    assert any(r.startswith("mta-sts.b.test:") and r.endswith(" /.well-known/mta-sts.txt") for r in web.requests)


def test_enforce_refuses_an_mx_not_in_the_policy(world):
    a, _, _ = world
    qid = send(a, "c.test", "enforce, MX not listed")
    line = deferred(a, qid)
    assert "4.7.5" in line and "mx.c.test is not listed in the MTA-STS policy of c.test" in line
    assert "tls_policy=mta-sts-enforce" in line
    out = show(a, qid)
    assert "pending" in out and "deferred" in out and "tls_policy=mta-sts-enforce" in out  # stays queued


def test_enforce_refuses_a_certificate_for_another_name(world):
    a, _, _ = world
    qid = send(a, "d.test", "enforce, wrong certificate name")
    line = deferred(a, qid)
    assert "4.7.5" in line and "certificate of mx.d.test not valid" in line and "tls_policy=mta-sts-enforce" in line
    assert "mx.d.test" in line and "Hostname mismatch" in line


def test_testing_delivers_and_says_what_enforce_would_refuse(world):
    a, b, _ = world
    qid = send(a, "e.test", "testing mode")
    line = delivered(a, b, qid, "e.test", "testing mode")
    assert "tls_policy=mta-sts-testing" in line
    reports = [x for x in a.log().splitlines() if "delivery.mta_sts_testing" in x and f"qid={qid}" in x]
    assert any("MX host not listed" in x for x in reports)
    assert any("certificate not valid" in x for x in reports)


def test_dane_ee_match_delivers(world):
    a, b, _ = world
    qid = send(a, "f.test", "DANE-EE")
    line = delivered(a, b, qid, "f.test", "DANE-EE")
    assert "tls_policy=dane" in line and "tls=TLSv1." in line
    assert "tls_policy=dane" in show(a, qid)


def test_dane_ta_match_delivers(world):
    a, b, _ = world
    qid = send(a, "i.test", "DANE-TA")
    assert "tls_policy=dane" in delivered(a, b, qid, "i.test", "DANE-TA")


def test_dane_mismatch_defers(world):
    a, _, _ = world
    qid = send(a, "g.test", "DANE mismatch")
    line = deferred(a, qid)
    assert "4.7.5" in line and "DANE: no TLSA record matches the certificate" in line and "tls_policy=dane" in line
    assert "pending" in show(a, qid)


def test_tlsa_without_ad_is_opportunistic(world):
    a, b, _ = world
    qid = send(a, "h.test", "TLSA without AD")
    line = delivered(a, b, qid, "h.test", "TLSA without AD")
    assert "tls_policy=opportunistic" in line and "tls=TLSv1." in line


def test_cached_policies_survive_a_restart(world):
    a, b, web = world
    web.reply, web.by_host = (404, {}, b""), {}  # nothing served any more: only the cache can say "enforce"
    a.stop()
    a.start()
    qid = send(a, "c.test", "after the restart")
    assert "not listed in the MTA-STS policy of c.test" in deferred(a, qid)
    qid = send(a, "b.test", "after the restart, b")
    assert "tls_policy=mta-sts-enforce" in delivered(a, b, qid, "b.test", "after the restart, b")
