"""SPF + DKIM + DMARC together on one message, against the fake DNS: the verdicts, the header, the policy."""

from __future__ import annotations

import asyncio

import pytest
from publicsuffixlist import PublicSuffixList

from courrier.mailauth import dkim, dmarc, results
from courrier.mailauth._dns import Resolver
from courrier.mailauth.report import AUTHENTIC, FORGED, UNVERIFIABLE, Authenticator
from tests.dnsfake import TIMEOUT

MESSAGE = (b"From: CEO <ceo@a.test>\r\nTo: bob@b.test\r\nSubject: wire transfer\r\n"
           b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <2@a.test>\r\n\r\nPlease pay today.\r\n")
PSL = PublicSuffixList()


@pytest.fixture
def a_test(fake_dns):
    """a.test: SPF for 127.0.0.1 only, an ed25519 DKIM key, DMARC p=reject."""
    key = dkim.signing_key("a.test", "s1", dkim.generate_pem("ed25519"))
    fake_dns.update({
        "a.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"], "MX": [(10, "mx.a.test")]},
        "mx.a.test": {"A": ["127.0.0.1"], "TXT": ["v=spf1 a -all"]},
        key.record_name: {"TXT": [key.record]},
        "_dmarc.a.test": {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@a.test"]},
    })
    return key


@pytest.fixture
def auth(resolver):
    return Authenticator(resolver, "mx.b.test", PSL)


def test_genuine_mail_passes_everything(auth, a_test):
    signed = dkim.Signer({"a.test": a_test}).sign(MESSAGE)
    r = auth.check(signed, client_ip="127.0.0.1", helo="mx.a.test", mail_from="ceo@a.test")
    assert (r.spf_helo.result, r.spf.result, r.dkim[0].result, r.dmarc.result) == ("pass", "pass", "pass", "pass")
    assert r.verdict == AUTHENTIC and r.dmarc.spf_aligned and r.dmarc.dkim_aligned == "a.test"
    h = r.header("mx.b.test")
    assert h.startswith("Authentication-Results: mx.b.test;\n\tspf=pass ") and h.endswith("\n")
    assert "smtp.mailfrom=ceo@a.test" in h and "dkim=pass" in h and "header.d=a.test header.s=s1" in h
    assert "dmarc=pass" in h and "header.from=a.test" in h and "\r" not in h


def test_forged_from_another_ip_fails_under_reject(auth, a_test):
    r = auth.check(MESSAGE, client_ip="127.0.0.2", helo="evil.test", mail_from="ceo@a.test")
    assert r.spf.result == "fail" and r.dkim == [] and r.dmarc.result == "fail"
    assert r.dmarc.policy == "reject" and r.dmarc.disposition == "reject"
    assert r.verdict == FORGED and "p=reject" in r.why
    h = r.header("mx.b.test")
    assert "spf=fail" in h and "dkim=none (message not signed)" in h and "dmarc=fail" in h


def test_own_envelope_domain_passes_spf_but_does_not_align(auth, a_test, fake_dns):
    fake_dns.set("evil.test", {"TXT": ["v=spf1 ip4:127.0.0.2 -all"]})
    r = auth.check(MESSAGE, client_ip="127.0.0.2", helo="evil.test", mail_from="bounce@evil.test")
    assert r.spf.result == "pass" and r.dmarc.result == "fail" and "not aligned" in r.dmarc.reason


def test_dkim_alone_carries_dmarc_through_a_forwarder(auth, a_test):
    """A forwarder (other IP, its own envelope) breaks SPF, but the aligned DKIM signature still passes DMARC."""
    signed = dkim.Signer({"a.test": a_test}).sign(MESSAGE)
    r = auth.check(signed, client_ip="127.0.0.9", helo="fwd.test", mail_from="")
    assert r.dmarc.result == "pass" and r.dmarc.dkim_aligned == "a.test" and not r.dmarc.spf_aligned


def test_subdomain_relaxed_alignment_and_sp(auth, a_test, fake_dns):
    fake_dns.set("_dmarc.a.test", {"TXT": ["v=DMARC1; p=reject; sp=quarantine"]})
    fake_dns.set("news.a.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    msg = MESSAGE.replace(b"ceo@a.test", b"ceo@news.a.test")
    ok = auth.check(msg, client_ip="127.0.0.1", helo="x", mail_from="x@a.test")
    assert ok.dmarc.result == "pass"  # relaxed: a.test and news.a.test share the organisational domain
    bad = auth.check(msg, client_ip="127.0.0.3", helo="x", mail_from="x@news.a.test")
    assert bad.dmarc.result == "fail" and bad.dmarc.policy == "quarantine"


def test_strict_alignment(auth, a_test, fake_dns):
    fake_dns.set("_dmarc.a.test", {"TXT": ["v=DMARC1; p=reject; aspf=s"]})
    fake_dns.set("news.a.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    r = auth.check(MESSAGE, client_ip="127.0.0.1", helo="x", mail_from="x@news.a.test")
    assert r.spf.result == "pass" and r.dmarc.result == "fail"


def test_no_dmarc_record_is_unverifiable(auth, fake_dns):
    fake_dns.set("plain.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    r = auth.check(MESSAGE.replace(b"a.test", b"plain.test"), client_ip="127.0.0.1", helo="h",
                   mail_from="ceo@plain.test")
    assert r.spf.result == "pass" and r.dmarc.result == "none" and r.verdict == UNVERIFIABLE


def test_dns_timeout_is_temperror_never_a_reject(fake_dns):
    fake_dns.set("_dmarc.slow.test", TIMEOUT)
    auth = Authenticator(Resolver([("127.0.0.1", fake_dns.port)], timeout=0.3), "mx.b.test", PSL)
    r = auth.check(MESSAGE.replace(b"a.test", b"slow.test"), client_ip="127.0.0.2", helo="h",
                   mail_from="ceo@slow.test")
    assert r.dmarc.result == "temperror" and r.dmarc.disposition == "none" and r.verdict == UNVERIFIABLE


def test_pct_sampling_softens_one_step(resolver, a_test, fake_dns):
    fake_dns.set("_dmarc.a.test", {"TXT": ["v=DMARC1; p=reject; pct=10"]})
    spf = None
    out = dmarc.evaluate(resolver, PSL, ["a.test"], spf, [], sample=lambda: 0.5)
    assert (out.result, out.policy, out.disposition) == ("fail", "reject", "quarantine")
    out = dmarc.evaluate(resolver, PSL, ["a.test"], spf, [], sample=lambda: 0.05)
    assert out.disposition == "reject"


def test_several_from_domains_is_permerror(auth, a_test):
    msg = MESSAGE.replace(b"From: CEO <ceo@a.test>", b"From: ceo@a.test, x@other.test")
    assert auth.check(msg, client_ip="127.0.0.1", helo="h", mail_from="ceo@a.test").dmarc.result == "permerror"


@pytest.mark.parametrize("text,expected", [
    ("v=DMARC1; p=quarantine; sp=none; adkim=s; pct=50", ("quarantine", "none", "s", "r", 50)),
    ("v=DMARC1;p=reject", ("reject", "reject", "r", "r", 100)),
    ("v=DMARC1; p=bogus; rua=mailto:x@a.test", ("none", "none", "r", "r", 100)),
])
def test_parse_record(text, expected):
    r = dmarc.parse_record("a.test", text)
    assert (r.p, r.sp, r.adkim, r.aspf, r.pct) == expected


@pytest.mark.parametrize("text", ["v=spf1 -all", "p=reject; v=DMARC1", "v=DMARC1; p=bogus", "v=DMARC2; p=reject"])
def test_not_a_dmarc_record(text):
    assert dmarc.parse_record("a.test", text) is None


def test_org_domain():
    assert dmarc.org_domain(PSL, "mail.example.co.uk") == "example.co.uk"
    assert dmarc.org_domain(PSL, "x.y.a.test") == "a.test"


@pytest.mark.parametrize("value,ours", [
    ("mx.b.test; spf=pass smtp.mailfrom=a@a.test", True),
    ("MX.B.TEST. 1; dkim=pass", True),
    ("(comment) mx.b.test;\n\tdmarc=pass", True),
    ('"mx.b.test"; none', True),
    ("mx.b.test.evil; spf=pass", False),
    ("other.test; spf=pass", False),
])
def test_authserv_id(value, ours):
    assert results.claims_authserv_id(value, "mx.b.test") is ours


def test_forged_results_claiming_our_id_are_found(auth, a_test):
    msg = (b"Authentication-Results: mx.b.test; dmarc=pass header.from=a.test\r\n"
           b"Authentication-Results: relay.a.test; spf=pass\r\n" + MESSAGE)
    r = auth.check(msg, client_ip="127.0.0.2", helo="h", mail_from="ceo@a.test")
    assert r.foreign_authres == [0]


async def test_check_async_runs_off_the_loop(auth, a_test):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    t = asyncio.create_task(ticker())
    r = await auth.check_async(MESSAGE, client_ip="127.0.0.2", helo="h", mail_from="ceo@a.test")
    t.cancel()
    assert r.verdict == FORGED and ticks > 0


async def test_check_async_deadline_gives_temperror(fake_dns):
    fake_dns.set("_dmarc.slow.test", TIMEOUT)
    fake_dns.set("slow.test", TIMEOUT)
    auth = Authenticator(Resolver([("127.0.0.1", fake_dns.port)], timeout=0.5), "mx.b.test", PSL, timeout=0.2)
    msg = b"Authentication-Results: mx.b.test; dmarc=pass\r\n" + MESSAGE.replace(b"a.test", b"slow.test")
    r = await auth.check_async(msg, client_ip="127.0.0.2", helo="h", mail_from="ceo@slow.test")
    assert r.dmarc.result == "temperror" and r.verdict == UNVERIFIABLE and r.foreign_authres == [0]
    assert "spf=temperror" in r.header("mx.b.test")


@pytest.mark.parametrize("policy,dmarc_reject,action", [
    ("reject", True, "reject"), ("reject", False, "junk"), ("quarantine", True, "junk"), ("none", True, "deliver"),
])
def test_action_follows_policy(auth, a_test, fake_dns, policy, dmarc_reject, action):
    fake_dns.set("_dmarc.a.test", {"TXT": [f"v=DMARC1; p={policy}"]})
    forged = auth.check(MESSAGE, client_ip="127.0.0.2", helo="h", mail_from="ceo@a.test")
    assert forged.action(dmarc_reject) == action
    genuine = auth.check(dkim.Signer({"a.test": a_test}).sign(MESSAGE), client_ip="127.0.0.1", helo="h",
                         mail_from="ceo@a.test")
    assert genuine.action(dmarc_reject) == "deliver"


def test_local_delivery_drops_exactly_the_forged_fields(auth):
    """The indexes the check reports are the fields local delivery leaves out — folded, bare-LF lines included."""
    import io

    from courrier.delivery.local import without_fields
    from courrier.mail.message import ReceivedMessage

    raw = (b"Received: from x\r\n\tby y\r\nAuthentication-Results: mx.b.test;\r\n\tdmarc=pass\r\nX-Odd: bare\n"
           b"Authentication-Results: other.test; spf=pass\r\n"
           b"Authentication-Results: (c) MX.B.TEST; dkim=pass\r\n" + MESSAGE)
    drop = auth.forged_authres(raw.split(b"\r\n\r\n")[0])
    assert drop == [1, 4]
    out = b"".join(without_fields(ReceivedMessage(io.BytesIO(raw), len(raw)), frozenset(drop)))
    assert out == (b"Received: from x\r\n\tby y\r\nX-Odd: bare\nAuthentication-Results: other.test; spf=pass\r\n"
                   + MESSAGE)
