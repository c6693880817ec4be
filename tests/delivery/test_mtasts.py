"""MTA-STS (RFC 8461): the TXT record and policy parsers, MX matching, the HTTPS fetch against a loopback server with a
test CA, and the policy cache (SQLite, across restarts; refreshed on a new id or after max_age)."""

import asyncio
import time

import pytest

from courrier.delivery import mtasts
from courrier.delivery.mtasts import PolicyError, mx_matches, parse_policy, record_id
from courrier.delivery.tlspolicy import ENFORCE, OPPORTUNISTIC, TESTING, TLSPolicy
from courrier.dns import Resolver
from tests.testca import PolicyServer, TestCA

GOOD = "version: STSv1\nmode: enforce\nmx: mx1.b.test\nmx: *.backup.b.test\nmax_age: 86400\n"


# ---------------------------------------------------------------- policy file (RFC 8461 §3.2)

def test_policy_fields():
    p = parse_policy(GOOD)
    assert (p.mode, p.mx, p.max_age) == ("enforce", ("mx1.b.test", "*.backup.b.test"), 86400)


@pytest.mark.parametrize("text", [
    GOOD.replace("\n", "\r\n"),                  # CRLF
    GOOD.rstrip("\n"),                           # no final line end
    GOOD + "\n\n",                               # trailing blank lines tolerated
    "mode:enforce\nversion:STSv1\nmax_age:0\nmx:mx1.b.test",   # no space, any order, max_age 0
    GOOD + "extension_1: some value\n",          # unknown well-formed field ignored
    GOOD.replace("mode: enforce", "mode: enforce\t  "),    # trailing white space
])
def test_policy_accepted(text):
    assert parse_policy(text).mode == "enforce"


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    (GOOD.replace("version: STSv1\n", ""), "no version"),
    (GOOD.replace("STSv1", "STSv2"), "version must be STSv1"),
    (GOOD.replace("STSv1", "stsv1"), "version must be STSv1"),          # %s: case-sensitive
    (GOOD.replace("mode: enforce", "mode: Enforce"), "mode must be"),
    (GOOD.replace("mode: enforce", "Mode: enforce"), "no mode"),          # field names are case-sensitive too
    (GOOD.replace("mode: enforce", "mode: strict"), "mode must be"),
    (GOOD.replace("86400", "31557601"), "max_age"),
    (GOOD.replace("86400", "-1"), "max_age"),
    (GOOD.replace("86400", "1d"), "max_age"),
    (GOOD.replace("max_age: 86400\n", ""), "no max_age"),
    ("version: STSv1\nmode: enforce\nmax_age: 60\n", "needs at least one mx"),
    ("version: STSv1\nmode: testing\nmax_age: 60\n", "needs at least one mx"),
    (GOOD.replace("*.backup", "*.*.backup"), "bad mx"),
    (GOOD.replace("mx1.b.test", "mx1..b.test"), "bad mx"),
    (GOOD.replace("mx1.b.test", "mx1.b.test:25"), "bad mx"),
    (GOOD.replace("mx1.b.test", "mx1.bé.test"), "bad mx"),               # A-labels only
    (GOOD.replace("mode: enforce\n", "mode: enforce\n\n"), "not a 'key: value'"),   # blank line inside
    (GOOD.replace("mode:", " mode:"), "not a 'key: value'"),
    (GOOD + "<html>\n", "not a 'key: value'"),
    (GOOD.replace("mx1.b.test", "mx1.b.test\x00"), "bad value"),
])
def test_policy_refused(text, why):
    with pytest.raises(PolicyError, match=why):
        parse_policy(text)


def test_first_of_a_repeated_field_counts_but_every_mx():
    p = parse_policy(GOOD + "mode: none\nmax_age: 5\nmx: mx2.b.test\n")
    assert (p.mode, p.max_age) == ("enforce", 86400)
    assert p.mx[-1] == "mx2.b.test"


def test_mode_none_needs_no_mx():
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 60\n").mx == ()


# ---------------------------------------------------------------- MX patterns (RFC 8461 §4.1)

@pytest.mark.parametrize("pattern, host, ok", [
    ("mx1.b.test", "mx1.b.test", True),
    ("mx1.b.test", "MX1.B.Test.", True),
    ("mx1.b.test", "mx2.b.test", False),
    ("*.b.test", "mx1.b.test", True),
    ("*.b.test", "b.test", False),              # the wildcard is exactly one label
    ("*.b.test", "a.mx1.b.test", False),
    ("*.b.test", "mx1.xb.test", False),
    ("*.B.TEST", "Mx9.b.test", True),
])
def test_mx_matching(pattern, host, ok):
    assert mx_matches(pattern, host) is ok


def test_policy_matches_any_pattern():
    p = parse_policy(GOOD)
    assert p.matches("mx1.b.test") and p.matches("x.backup.b.test")
    assert not p.matches("evil.test") and not p.matches("backup.b.test")


# ---------------------------------------------------------------- TXT record (RFC 8461 §3.1)

@pytest.mark.parametrize("txts, ident", [
    (["v=STSv1; id=20240101T000000"], "20240101T000000"),
    (["v=STSv1;id=abc;"], "abc"),
    (["v=STSv1; id=abc; ext-1=value"], "abc"),
    (["v=spf1 -all", "v=STSv1; id=abc"], "abc"),         # other TXT records are ignored
    (["v=STSv1; id=abc", "v=STSv1; id=def"], None),      # two STS records: no policy
    (["v=STSv1; id=" + "a" * 33], None),                  # id is 1 to 32 characters
    (["v=STSv1; id=a-b"], None),
    (["v=STSv1; ext=1"], None),                           # no id
    (["v=STSv1; id=abc; bad"], None),
    (["v=STSv2; id=abc"], None),
    ([], None),
])
def test_record_id(txts, ident):
    assert record_id(txts) == ident


# ---------------------------------------------------------------- the HTTPS fetch (RFC 8461 §3.3)

@pytest.fixture(scope="module")
def ca():
    return TestCA()


@pytest.fixture
def policy_host(ca, tmp_path, fake_dns):
    fake_dns.set("mta-sts.b.test", {"A": ["127.0.0.1"]})
    with PolicyServer(ca, "mta-sts.b.test", tmp_path / "web") as srv:
        yield srv


def context(ca, tmp_path):
    return TLSPolicy(resolver=Resolver(), db_path=None, ca_file=ca.write(tmp_path / "trust")).verify_context


async def fetch(fake_dns, ca, tmp_path, port):
    return await mtasts.fetch_policy("b.test", resolver=Resolver([fake_dns.address]), context=context(ca, tmp_path),
                                     port=port, timeout=5)


async def test_fetch_good_policy(policy_host, fake_dns, ca, tmp_path):
    policy_host.serve(GOOD, "text/plain; charset=utf-8")
    text, policy = await fetch(fake_dns, ca, tmp_path, policy_host.port)
    assert text == GOOD and policy.mode == "enforce"
    assert policy_host.requests == [f"mta-sts.b.test:{policy_host.port} /.well-known/mta-sts.txt"]


async def test_fetch_chunked(policy_host, fake_dns, ca, tmp_path):
    body = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in (GOOD[:10].encode(), GOOD[10:].encode())) + b"0\r\n\r\n"
    policy_host.reply = (200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}, body)
    assert (await fetch(fake_dns, ca, tmp_path, policy_host.port))[0] == GOOD


@pytest.mark.parametrize("reply, why", [
    ((301, {"Location": "https://elsewhere.test/p.txt"}, b""), "redirect .*not followed"),
    ((404, {}, b""), "HTTP 404"),
    ((200, {"Content-Type": "text/html"}, GOOD.encode()), "media type text/html"),
    ((200, {"Content-Type": "text/plain", "Content-Length": str(70000)}, b""), "larger than 65536"),
    ((200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}, b"10001\r\n" + b"x" * 65537 + b"\r\n"),
     "larger than 65536"),
    ((200, {"Content-Type": "text/plain"}, b"version: STSv1\nmode: enforce\n"), "no max_age"),
    ((200, {"Content-Type": "text/plain"}, b"\xff\xfe"), "not UTF-8"),
])
async def test_fetch_refused(policy_host, fake_dns, ca, tmp_path, reply, why):
    policy_host.reply = reply
    with pytest.raises(PolicyError, match=why):
        await fetch(fake_dns, ca, tmp_path, policy_host.port)


async def test_fetch_needs_a_trusted_certificate_for_the_policy_host(ca, tmp_path, fake_dns):
    fake_dns.set("mta-sts.b.test", {"A": ["127.0.0.1"]})
    wrong_name = ca.issue(["www.b.test"])
    with PolicyServer(ca, "mta-sts.b.test", tmp_path / "w1", leaf=wrong_name) as srv:
        srv.serve(GOOD)
        with pytest.raises(PolicyError, match="certificate not valid for mta-sts.b.test"):
            await fetch(fake_dns, ca, tmp_path, srv.port)
    with PolicyServer(TestCA("another CA"), "mta-sts.b.test", tmp_path / "w2") as srv:  # untrusted issuer
        srv.serve(GOOD)
        with pytest.raises(PolicyError, match="certificate not valid"):
            await fetch(fake_dns, ca, tmp_path, srv.port)


async def test_fetch_is_bounded_in_time(fake_dns, ca, tmp_path):
    fake_dns.set("mta-sts.b.test", {"A": ["127.0.0.1"]})
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers the handshake
    port = silent.sockets[0].getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match="no answer within 0.5 s"):
        await mtasts.fetch_policy("b.test", resolver=Resolver([fake_dns.address]), context=context(ca, tmp_path),
                                  port=port, timeout=0.5)
    assert time.monotonic() - t0 < 3
    silent.close()


# ---------------------------------------------------------------- discovery and the cache (RFC 8461 §5.1)

def policy_for(fake_dns, ca, tmp_path, port):
    return TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=tmp_path / "courrier.db", policy_port=port,
                     ca_file=ca.write(tmp_path / "trust"), fetch_timeout=5)


async def test_policy_cached_across_restarts_and_refreshed_on_new_id(policy_host, fake_dns, ca, tmp_path):
    fake_dns.set("_mta-sts.b.test", {"TXT": ["v=STSv1; id=one"], "TTL": 0})
    policy_host.serve(GOOD)
    p = await policy_for(fake_dns, ca, tmp_path, policy_host.port).domain_policy("b.test")
    assert p.mode == "enforce" and len(policy_host.requests) == 1

    # a new process (same database): the cached policy holds even when the web server says nothing useful
    policy_host.reply = (500, {}, b"")
    again = policy_for(fake_dns, ca, tmp_path, policy_host.port)
    assert (await again.domain_policy("b.test")).mode == "enforce"
    assert len(policy_host.requests) == 1  # same id: not fetched again
    fake_dns.set("_mta-sts.b.test", {})   # the TXT record is gone: the cached policy still applies
    assert (await again.domain_policy("B.test.")).mode == "enforce"

    # a new id: fetched again; the new policy replaces the old one
    fake_dns.set("_mta-sts.b.test", {"TXT": ["v=STSv1; id=two"], "TTL": 0})
    policy_host.serve(GOOD.replace("enforce", "testing"))
    again = policy_for(fake_dns, ca, tmp_path, policy_host.port)  # (the resolver above cached the empty answer)
    assert (await again.domain_policy("b.test")).mode == "testing"
    assert len(policy_host.requests) == 2
    assert (await policy_for(fake_dns, ca, tmp_path, policy_host.port).domain_policy("b.test")).mode == "testing"


async def test_failed_fetch_keeps_the_cached_policy_and_backs_off(policy_host, fake_dns, ca, tmp_path):
    fake_dns.set("_mta-sts.b.test", {"TXT": ["v=STSv1; id=one"], "TTL": 0})
    policy_host.serve(GOOD)
    tp = policy_for(fake_dns, ca, tmp_path, policy_host.port)
    await tp.domain_policy("b.test")
    fake_dns.set("_mta-sts.b.test", {"TXT": ["v=STSv1; id=two"], "TTL": 0})
    policy_host.reply = (404, {}, b"")
    assert (await tp.domain_policy("b.test")).mode == "enforce"   # id changed, fetch failed: old policy holds
    assert (await tp.domain_policy("b.test")).mode == "enforce"
    assert len(policy_host.requests) == 2                         # not hammered: one retry per FETCH_RETRY


async def test_expired_policy_is_fetched_again(policy_host, fake_dns, ca, tmp_path):
    fake_dns.set("_mta-sts.b.test", {"TXT": ["v=STSv1; id=one"], "TTL": 0})
    policy_host.serve(GOOD.replace("86400", "1"))
    tp = policy_for(fake_dns, ca, tmp_path, policy_host.port)
    await tp.domain_policy("b.test")
    await asyncio.sleep(1.1)
    policy_host.serve(GOOD)
    assert (await tp.domain_policy("b.test")).max_age == 86400
    assert len(policy_host.requests) == 2


async def test_no_record_or_no_policy_means_opportunistic(policy_host, fake_dns, ca, tmp_path):
    tp = policy_for(fake_dns, ca, tmp_path, policy_host.port)
    assert await tp.domain_policy("b.test") is None                       # no _mta-sts record
    fake_dns.set("_mta-sts.b.test", {"TXT": ["v=STSv1; id=one"], "TTL": 0})
    policy_host.reply = (404, {}, b"")
    assert await tp.domain_policy("b.test") is None                       # record, but no policy served
    hp = await tp.host_policy("Q1", "b.test", "mx1.b.test", 25, None)
    assert hp.label == OPPORTUNISTIC and not hp.require_tls


async def test_host_policy_from_the_mode():
    tp = TLSPolicy(resolver=Resolver(), db_path=None, dane=False)
    enforce = parse_policy(GOOD)
    hp = await tp.host_policy("Q1", "b.test", "mx1.b.test", 25, enforce)
    assert (hp.label, hp.require_tls, hp.verify, hp.refused) == (ENFORCE, True, "pkix", None)
    hp = await tp.host_policy("Q1", "b.test", "evil.test", 25, enforce)
    assert hp.refused is not None and hp.refused.code == 451 and "not listed" in hp.refused.text
    hp = await tp.host_policy("Q1", "b.test", "evil.test", 25, parse_policy(GOOD.replace("enforce", "testing")))
    assert (hp.label, hp.require_tls, hp.refused) == (TESTING, False, None)
    none = parse_policy("version: STSv1\nmode: none\nmax_age: 60\n")
    assert (await tp.host_policy("Q1", "b.test", "evil.test", 25, none)).label == OPPORTUNISTIC


async def test_testing_mode_delivers_without_starttls_and_reports(fake_dns, ca, tmp_path, capsys):
    from tests.client.sink import smtp_sink
    from tests.delivery.test_remote import MSG, client, env

    fake_dns.set("_mta-sts.sink.test", {"TXT": ["v=STSv1; id=1"]})
    fake_dns.set("mta-sts.sink.test", {"A": ["127.0.0.1"]})
    leaf_host = PolicyServer(ca, "mta-sts.sink.test", tmp_path / "web2")
    leaf_host.serve(GOOD.replace("enforce", "testing"))
    with leaf_host, smtp_sink() as (port, _):
        tp = TLSPolicy(resolver=Resolver([fake_dns.address]), db_path=tmp_path / "courrier.db", dane=False,
                       policy_port=leaf_host.port, ca_file=ca.write(tmp_path / "trust"))
        rd = client(fake_dns, port, tls_policy=tp)
        e = env("T1")
        out = await rd.deliver("sink.test", e, MSG, list(enumerate(e.rcpts)), lambda r, o: None)
        await rd.close()
    assert out[0].ok and out[0].tls_policy == TESTING and out[0].tls is None
    err = capsys.readouterr().err
    assert "delivery.mta_sts_testing qid=T1 domain=sink.test host=mx.sink.test" in err
    assert 'would_refuse="MX host not listed in the policy"' in err
    assert 'would_refuse="no TLS: STARTTLS not offered"' in err
