"""DANE for SMTP (RFC 7672): matching a certificate chain against TLSA records (usages 2 and 3, selectors 0 and 1,
matching types 0, 1, 2), and the per-host policy from the fake DNS: validated (AD) answers count, others do not,
DANE before MTA-STS."""

import datetime
import hashlib

import pytest

from courrier.delivery import dane
from courrier.delivery.dane import TLSA, selected, usable, verify
from courrier.delivery.mtasts import parse_policy
from courrier.delivery.tlspolicy import DANE, ENFORCE, OPPORTUNISTIC, TLSPolicy
from courrier.dns import Resolver
from tests.dnsfake import SERVFAIL
from tests.testca import TestCA


@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture(scope="module")
def leaf(ca):
    return ca.issue(["mx.b.test"])


def ee(cert, selector=1, mtype=1, usage=3):
    data = selected(cert, selector)
    return TLSA(usage, selector, mtype, {0: data, 1: hashlib.sha256(data).digest(),
                                         2: hashlib.sha512(data).digest()}[mtype])


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_leaf(leaf, selector, mtype):
    assert verify(leaf.chain_der(), [ee(leaf.cert, selector, mtype)], "mx.b.test") is None


def test_dane_ee_ignores_name_and_dates(ca):
    old = ca.issue(["other.name.test"], expired=True)
    assert verify(old.chain_der(), [ee(old.cert)], "mx.b.test") is None  # RFC 7672 §3.1.1
    selfsigned = ca.issue(["x.test"], self_signed=True)
    assert verify(selfsigned.chain_der(), [ee(selfsigned.cert)], "mx.b.test") is None


def test_dane_ee_mismatch_says_why(leaf, ca):
    other = ca.issue(["mx.b.test"])
    why = verify(leaf.chain_der(), [ee(other.cert)], "mx.b.test")
    spki = hashlib.sha256(selected(leaf.cert, 1)).hexdigest()
    assert why == f"no TLSA record matches the certificate (leaf SPKI SHA-256 {spki})"


@pytest.mark.parametrize("selector", [0, 1])
def test_dane_ta_matches_issuer_in_chain(ca, leaf, selector):
    assert verify(leaf.chain_der(), [ee(ca.cert, selector, 1, usage=2)], "mx.b.test") is None


def test_dane_ta_checks_the_name(ca, leaf):
    why = verify(leaf.chain_der(), [ee(ca.cert, usage=2)], "mx2.b.test")
    assert why == "the certificate does not name mx2.b.test (RFC 7672 §3.2.2)"
    wild = ca.issue(["*.b.test"])
    assert verify(wild.chain_der(), [ee(ca.cert, usage=2)], "mx7.b.test") is None
    assert verify(wild.chain_der(), [ee(ca.cert, usage=2)], "a.mx7.b.test") is not None


def test_dane_ta_checks_the_signature_and_dates(ca, leaf):
    other_ca = TestCA("other")
    forged = other_ca.issue(["mx.b.test"])
    chain = [forged.chain_der()[0], ca.cert.public_bytes(dane.serialization.Encoding.DER)]  # real CA, foreign leaf
    assert "does not verify" in verify(chain, [ee(ca.cert, usage=2)], "mx.b.test")
    expired = ca.issue(["mx.b.test"], expired=True)
    assert "expired" in verify(expired.chain_der(), [ee(ca.cert, usage=2)], "mx.b.test")
    assert verify(expired.chain_der(), [ee(ca.cert, usage=2)], "mx.b.test",
                  now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=5)) is None


def test_dane_ta_needs_the_anchor_in_the_chain(ca, leaf):
    assert verify(leaf.chain_der()[:1], [ee(ca.cert, usage=2)], "mx.b.test").startswith(
        "no TLSA record matches the certificate chain")


def test_usable_records_only():
    records = [TLSA(u, s, m, b"x") for u in (0, 1, 2, 3, 4) for s in (0, 1, 2) for m in (0, 1, 2, 3)]
    got = usable(records)
    assert {r.usage for r in got} == {2, 3}  # PKIX-TA/EE are unusable in SMTP (RFC 7672 §3.1.3)
    assert {r.selector for r in got} == {0, 1} and {r.mtype for r in got} == {0, 1, 2}


def test_no_certificate():
    assert verify([], [TLSA(3, 1, 1, b"x")], "mx.b.test") == "the server sent no certificate"


# ---------------------------------------------------------------- the policy of one MX host

def spki_sha256(cert):
    return hashlib.sha256(selected(cert, 1)).hexdigest()


async def test_validated_tlsa_means_dane(fake_dns, leaf):
    fake_dns.set("_25._tcp.mx.b.test", {"TLSA": [(3, 1, 1, spki_sha256(leaf.cert)), (1, 1, 1, "00" * 32)],
                                        "AD": True})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None)
    hp = await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)
    assert (hp.label, hp.require_tls, hp.verify) == (DANE, True, "dane")
    assert [r.usage for r in hp.tlsa] == [3]  # the PKIX-EE record is left out


async def test_dane_before_mta_sts(fake_dns, leaf):
    fake_dns.set("_25._tcp.mx.b.test", {"TLSA": [(3, 1, 1, spki_sha256(leaf.cert))], "AD": True})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None)
    sts = parse_policy("version: STSv1\nmode: enforce\nmx: other.b.test\nmax_age: 60\n")
    assert (await tp.host_policy("Q1", "b.test", "mx.b.test", 25, sts)).label == DANE  # RFC 8461 §2
    assert (await tp.host_policy("Q1", "b.test", "other.b.test", 25, sts)).label == ENFORCE


async def test_tlsa_without_ad_is_ignored(fake_dns, leaf):
    fake_dns.set("_25._tcp.mx.b.test", {"TLSA": [(3, 1, 1, spki_sha256(leaf.cert))]})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None)
    assert (await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)).label == OPPORTUNISTIC


async def test_tlsa_port_is_the_mx_port(fake_dns, leaf):
    fake_dns.set("_2525._tcp.mx.b.test", {"TLSA": [(3, 1, 1, spki_sha256(leaf.cert))], "AD": True})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None)
    assert (await tp.host_policy("Q1", "b.test", "mx.b.test", 2525, None)).label == DANE
    assert (await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)).label == OPPORTUNISTIC


async def test_only_unusable_records_still_require_tls(fake_dns):
    fake_dns.set("_25._tcp.mx.b.test", {"TLSA": [(1, 1, 1, "00" * 32)], "AD": True})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None)
    hp = await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)
    assert (hp.label, hp.require_tls, hp.verify) == (DANE, True, "none")  # RFC 7672 §2.2


async def test_failed_tlsa_lookup_on_a_signed_host_defers(fake_dns):
    fake_dns.set("_25._tcp.mx.b.test", SERVFAIL)
    fake_dns.set("mx.b.test", {"A": ["127.0.0.1"], "AD": True})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address], timeout=1, lifetime=2), db_path=None)
    hp = await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)
    assert hp.label == DANE and hp.refused is not None and (hp.refused.code, hp.refused.enhanced) == (451, "4.4.3")
    fake_dns.set("mx.b.test", {"A": ["127.0.0.1"]})  # unsigned host: the failure is no reason to defer
    tp = TLSPolicy(resolver=Resolver([fake_dns.address], timeout=1, lifetime=2), db_path=None)
    assert (await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)).label == OPPORTUNISTIC


async def test_dane_can_be_turned_off(fake_dns, leaf):
    fake_dns.set("_25._tcp.mx.b.test", {"TLSA": [(3, 1, 1, spki_sha256(leaf.cert))], "AD": True})
    tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None, dane=False)
    assert (await tp.host_policy("Q1", "b.test", "mx.b.test", 25, None)).label == OPPORTUNISTIC


async def test_dane_host_without_starttls_defers(fake_dns, leaf):
    """RFC 7672 §2.2: with validated TLSA records TLS is mandatory — smtp-sink offers no STARTTLS."""
    from tests.client.sink import smtp_sink
    from tests.delivery.test_remote import MSG, client, env

    with smtp_sink() as (port, _):
        fake_dns.set(f"_{port}._tcp.mx.sink.test", {"TLSA": [(3, 1, 1, spki_sha256(leaf.cert))], "AD": True})
        rd = client(fake_dns, port, tls_policy=TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=None))
        attempts = []
        e = env("D1")
        out = await rd.deliver("sink.test", e, MSG, list(enumerate(e.rcpts)), lambda r, o: attempts.append(o))
        await rd.close()
    assert (out[0].code, out[0].enhanced, out[0].tls_policy) == (451, "4.7.4", DANE)
    assert "mx.sink.test does not offer STARTTLS, required by the dane policy" in out[0].text
    assert [o.tls_policy for o in attempts] == [DANE]
