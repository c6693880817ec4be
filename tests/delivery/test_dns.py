"""courrier.dns against the dnslib fake server: MX order, implicit and null MX, CNAME, NXDOMAIN, timeouts."""

import random

import pytest

from courrier.dns import DNSTempError, NXDomain, Resolver
from tests.dnsfake import NXDOMAIN, SERVFAIL, TIMEOUT, FakeDNS


@pytest.fixture
def resolver(fake_dns):
    return Resolver([fake_dns.address], timeout=0.3, lifetime=0.6, rng=random.Random(1))


async def test_mx_sorted_and_addresses(fake_dns, resolver):
    fake_dns.update({
        "b.test": {"MX": [(20, "mx2.b.test"), (10, "mx1.b.test")]},
        "mx1.b.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
        "mx2.b.test": {"A": ["127.0.0.3"]},
    })
    assert await resolver.mx("b.test") == [(10, "mx1.b.test"), (20, "mx2.b.test")]
    plan = await resolver.mx_plan("B.TEST.")
    assert plan.kind == "mx"
    assert [(h.host, h.addresses) for h in plan.hosts] == [
        ("mx1.b.test", ("127.0.0.2", "::1")), ("mx2.b.test", ("127.0.0.3",))]


async def test_equal_preferences_are_shuffled(fake_dns):
    fake_dns.set("eq.test", {"MX": [(10, f"h{i}.eq.test") for i in range(6)]})
    for i in range(6):
        fake_dns.set(f"h{i}.eq.test", {"A": [f"127.0.1.{i}"]})
    orders = set()
    for seed in range(6):
        r = Resolver([fake_dns.address], rng=random.Random(seed))
        orders.add(tuple(h.host for h in (await r.mx_plan("eq.test")).hosts))
    assert len(orders) > 1


async def test_implicit_null_nxdomain(fake_dns, resolver):
    fake_dns.update({
        "implicit.test": {"A": ["127.0.0.9"]},
        "null.test": {"MX": [(0, ".")]},
        "empty.test": {"TXT": ["hello"]},
    })
    p = await resolver.mx_plan("implicit.test")
    assert p.kind == "implicit" and p.hosts[0].addresses == ("127.0.0.9",)
    p = await resolver.mx_plan("null.test")
    assert p.kind == "null" and p.permanent_failure and not p.hosts
    p = await resolver.mx_plan("nowhere.test")
    assert p.kind == "nxdomain" and p.permanent_failure
    p = await resolver.mx_plan("empty.test")
    assert p.kind == "none" and p.permanent_failure
    with pytest.raises(NXDomain):
        await resolver.a("nowhere.test")


async def test_cname_followed(fake_dns, resolver):
    fake_dns.update({
        "alias.test": {"CNAME": "real.test"},
        "real.test": {"MX": [(5, "mxhost.test")]},
        "mxhost.test": {"CNAME": "box.test"},
        "box.test": {"A": ["127.0.0.5"]},
    })
    plan = await resolver.mx_plan("alias.test")
    assert plan.hosts[0].host == "mxhost.test" and plan.hosts[0].addresses == ("127.0.0.5",)


async def test_txt_long_record_joined(fake_dns, resolver):
    key = "v=DKIM1; k=rsa; p=" + "A" * 400
    fake_dns.set("sel._domainkey.a.test", {"TXT": [key]})
    assert await resolver.txt("sel._domainkey.a.test") == [key]
    assert await resolver.txt("sel._domainkey.a.test.") == [key]


async def test_temporary_failures(fake_dns):
    resolver = Resolver([fake_dns.address], timeout=0.2, lifetime=0.25)
    fake_dns.update({"slow.test": TIMEOUT, "broken.test": SERVFAIL, "gone.test": NXDOMAIN,
                     "half.test": {"MX": [(10, "slowhost.test")]}, "slowhost.test": TIMEOUT})
    with pytest.raises(DNSTempError):
        await resolver.mx("slow.test")
    with pytest.raises(DNSTempError):
        await resolver.mx("broken.test")
    assert (await resolver.mx_plan("slow.test")).kind == "tempfail"
    assert (await resolver.mx_plan("half.test")).kind == "tempfail"
    assert (await resolver.mx_plan("gone.test")).kind == "nxdomain"


def test_fake_dns_context_manager_and_queries():
    import dns.resolver
    with FakeDNS({"x.test": {"A": "127.0.0.7"}}) as d:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = d.port
        assert [a.address for a in r.resolve("x.test", "A")] == ["127.0.0.7"]
        assert [a.address for a in r.resolve("x.test", "A", tcp=True)] == ["127.0.0.7"]
        assert ("x.test", "A") in d.queries


async def test_answers_kept_for_their_ttl():
    """Each answer is asked once while its TTL runs: positive, NXDOMAIN and NODATA alike; TTL 0 is asked each time,
    and a failure (SERVFAIL) is never kept."""
    with FakeDNS({"kept.test": {"A": ["127.0.0.8"]}, "zero.test": {"A": ["127.0.0.9"], "TTL": 0},
                  "named.test": {"A": ["127.0.0.10"]}, "broken.test": SERVFAIL}) as d:
        r = Resolver([d.address], timeout=0.3, lifetime=0.6)
        for _ in range(3):
            assert await r.a("kept.test") == ["127.0.0.8"]
            assert await r.a("zero.test") == ["127.0.0.9"]
            with pytest.raises(NXDomain):
                await r.txt("_mta-sts.gone.test")
            assert await r.txt("named.test") == []  # NODATA
            with pytest.raises(DNSTempError):
                await r.a("broken.test")
        asked = list(d.queries)
        assert asked.count(("kept.test", "A")) == 1 and asked.count(("zero.test", "A")) == 3
        assert asked.count(("_mta-sts.gone.test", "TXT")) == 1 and asked.count(("named.test", "TXT")) == 1
        assert asked.count(("broken.test", "A")) >= 3
        r._r.cache.flush()  # dnspython's own cache emptied: ours still answers
        assert await r.a("kept.test") == ["127.0.0.8"] and d.queries.count(("kept.test", "A")) == 1


async def test_concurrent_lookups_share_one_query():
    import asyncio
    with FakeDNS({"many.test": {"MX": [(10, "mx.many.test")]}, "mx.many.test": {"A": ["127.0.0.11"]}}) as d:
        r = Resolver([d.address], timeout=0.3, lifetime=0.6)
        plans = await asyncio.gather(*(r.mx_plan("many.test") for _ in range(50)))
        assert all(p.hosts[0].addresses == ("127.0.0.11",) for p in plans)
        assert d.queries.count(("many.test", "MX")) == 1 and d.queries.count(("mx.many.test", "A")) == 1
        errors = await asyncio.gather(*(r.a("nothere.test") for _ in range(5)), return_exceptions=True)
        assert all(isinstance(e, NXDomain) for e in errors) and len({id(e) for e in errors}) == 5
        assert d.queries.count(("nothere.test", "A")) == 1
