"""DNS blocklists against a real DNS server on loopback (tests/dnsfake.py): query names, what counts as a
listing, and failures that never refuse mail."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from courrier.dns import Resolver
from courrier.filter.api import ACCEPT, Action
from courrier.filter.chain import FilterChain
from courrier.filter.dnsbl import DNSBLFilter, printable, query_name
from tests.dnsfake import SERVFAIL, TIMEOUT, FakeDNS
from tests.filter.helpers import HOP


def test_query_names() -> None:
    """RFC 5782 §2.1 (octets reversed) and §2.4 (32 nibbles reversed); IPv4-mapped IPv6 is looked up as IPv4."""
    assert query_name("192.0.2.99", "bl.example") == "99.2.0.192.bl.example"
    assert query_name("2001:db8:1:2:3:4:567:89ab", "bl.example") == (
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example")
    assert query_name("::ffff:192.0.2.99", "bl.example") == "99.2.0.192.bl.example"
    assert query_name("fe80::1%eth0", "bl.example").startswith("1.0.0.0.")
    assert query_name("not-an-ip", "bl.example") is None


def test_txt_becomes_safe_reply_text() -> None:
    assert printable("Listed\r\n250 OK\x00 see https://bl.example/q?1") == "Listed??250 OK? see https://bl.example/q?1"
    assert len(printable("x" * 1000)) == 200


def dnsbl(fake: FakeDNS, *zones: str, **kw: float) -> DNSBLFilter:
    return DNSBLFilter(zones, Resolver([fake.address], timeout=1.0, lifetime=2.0), **kw)


async def test_listed_client_is_refused_naming_the_zone(fake_dns: FakeDNS) -> None:
    fake_dns.set("7.2.0.192.bl.example", {"A": ["127.0.0.2"], "TXT": ["Listed: see https://bl.example/192.0.2.7"]})
    v = await dnsbl(fake_dns, "bl.example").check_client(HOP)
    assert v.action is Action.REJECT and v.reply is not None
    assert (v.reply.code, v.reply.enhanced) == (554, "5.7.1")
    assert v.reply.text == ("Service unavailable; client host [192.0.2.7] blocked using bl.example; "
                            "Listed: see https://bl.example/192.0.2.7")


async def test_first_listing_zone_in_configured_order(fake_dns: FakeDNS) -> None:
    fake_dns.set("7.2.0.192.second.example", {"A": ["127.0.0.4"]})
    fake_dns.set("7.2.0.192.third.example", {"A": ["127.0.0.2"]})
    v = await dnsbl(fake_dns, "first.example", "second.example", "third.example").check_client(HOP)
    assert v.reply is not None and v.reply.text == "Service unavailable; client host [192.0.2.7] blocked using second.example"


async def test_ipv6_client(fake_dns: FakeDNS) -> None:
    hop = dataclasses.replace(HOP, client_ip="2001:db8::1")
    fake_dns.set(query_name("2001:db8::1", "bl.example"), {"A": ["127.0.0.2"]})
    assert (await dnsbl(fake_dns, "bl.example").check_client(hop)).refused


@pytest.mark.parametrize("entry", [
    {"A": ["127.255.255.254"]},  # Spamhaus: "query refused" (public resolver), not a listing
    {"A": ["198.51.100.1"]},  # an NXDOMAIN-rewriting resolver's advertising page
    {"TXT": ["no A record"]},
    SERVFAIL,
])
async def test_answers_that_are_no_listing(fake_dns: FakeDNS, entry: object) -> None:
    fake_dns.set("7.2.0.192.bl.example", entry)
    assert await dnsbl(fake_dns, "bl.example").check_client(HOP) == ACCEPT


async def test_not_listed_and_no_client(fake_dns: FakeDNS) -> None:
    f = dnsbl(fake_dns, "bl.example")
    assert await f.check_client(HOP) == ACCEPT  # NXDOMAIN
    assert await f.check_client(dataclasses.replace(HOP, client_ip=None)) == ACCEPT


async def test_a_hanging_zone_is_bounded_and_others_still_count(fake_dns: FakeDNS) -> None:
    fake_dns.set("7.2.0.192.slow.example", TIMEOUT)
    fake_dns.set("7.2.0.192.fast.example", {"A": ["127.0.0.2"]})
    started = time.monotonic()
    assert await dnsbl(fake_dns, "slow.example", budget=0.5).check_client(HOP) == ACCEPT
    assert time.monotonic() - started < 1.5
    assert (await dnsbl(fake_dns, "slow.example", "fast.example", budget=0.5).check_client(HOP)).refused


async def test_answers_are_shared_per_client(fake_dns: FakeDNS) -> None:
    """Many recipients and many connections from one client: one set of lookups, concurrent callers included."""
    fake_dns.set("7.2.0.192.bl.example", {"A": ["127.0.0.2"]})
    f = dnsbl(fake_dns, "bl.example")
    verdicts = await asyncio.gather(*(f.check_client(HOP) for _ in range(20)))
    verdicts.append(await f.check_client(HOP))
    assert all(v.refused for v in verdicts)
    asked = [q for q in fake_dns.queries if q[0] == "7.2.0.192.bl.example"]
    assert asked == [("7.2.0.192.bl.example", "A"), ("7.2.0.192.bl.example", "TXT")]


async def test_started_at_connect_answered_at_rcpt(fake_dns: FakeDNS) -> None:
    """The MX role starts the client check at connect; RCPT gets the answer of that same lookup."""
    fake_dns.set("7.2.0.192.bl.example", {"A": ["127.0.0.2"]})
    chain = FilterChain([dnsbl(fake_dns, "bl.example")])
    chain.start_client_check(HOP)
    await asyncio.sleep(0)  # the session goes on with EHLO and MAIL meanwhile
    assert (await chain.check_client(HOP)).refused
    assert fake_dns.queries.count(("7.2.0.192.bl.example", "A")) == 1
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert not chain._early  # the early task is not kept once done
