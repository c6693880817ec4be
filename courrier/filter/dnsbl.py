"""DNS blocklists (RFC 5782) as a filter: the client's address looked up in each configured zone.

RFC 5782 §2.1 (IPv4): the address's octets reversed, prepended to the zone — 192.0.2.99 in ``bl.example`` is
``99.2.0.192.bl.example``; §2.4 (IPv6): its 32 nibbles reversed, dot-separated. An A record means "listed"; a TXT
record at the same name, when there is one, says why. Only answers in 127.0.0.0/8 count (§2.3: "the A record is
usually 127.0.0.2"), and 127.255.255.0/24 is left out: Spamhaus answers there to mean "your query was refused"
(open resolver, over quota), which is not a listing — an address outside 127/8 (a resolver rewriting NXDOMAIN to an
advertising page) is not one either.

Nothing here ever refuses mail because of a failure: a zone that times out or fails is logged and counted as "not
listed", and the whole check has one time budget. Answers are kept per client address for ``CACHE_SECONDS`` (and
lookups already in flight are shared), so that a client sending many recipients, or many connections, costs one set
of lookups.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

from courrier import log
from courrier.dns import DNSError, NXDomain, Resolver
from courrier.filter.api import ACCEPT, Action, ClientFilter, Verdict
from courrier.mail.envelope import Hop
from courrier.mail.reply import Reply

BUDGET = 5.0  # seconds for all zones of one client together
CACHE_SECONDS = 300.0
CACHE_SIZE = 4096
MAX_TEXT = 200

_LOOPBACK8 = ipaddress.ip_network("127.0.0.0/8")
_REFUSED = ipaddress.ip_network("127.255.255.0/24")


def query_name(ip: str, zone: str) -> str | None:
    """The name to look up for ``ip`` in ``zone`` (RFC 5782 §2.1, §2.4); None for what is not an address.
    An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 client) is looked up as IPv4."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    rev = addr.reverse_pointer  # "4.3.2.1.in-addr.arpa" / 32 nibbles + ".ip6.arpa"
    return rev.rsplit(".", 2)[0] + "." + zone


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """A zone's TXT as reply text: printable ASCII only (never a CR or LF into the SMTP reply), bounded."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:limit].strip()


class DNSBLFilter(ClientFilter):
    """Refuses a client listed in any of ``zones`` with 554 5.7.1 naming the zone (the first listing zone, in
    configuration order)."""

    name = "dnsbl"

    def __init__(self, zones: tuple[str, ...], resolver: Resolver, *, budget: float = BUDGET,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.zones, self.resolver, self.budget, self.cache_seconds = zones, resolver, budget, cache_seconds
        self._cache: dict[str, tuple[float, Verdict]] = {}
        self._inflight: dict[str, asyncio.Future[Verdict]] = {}

    async def check_client(self, hop: Hop) -> Verdict:
        ip = hop.client_ip
        if not ip or not self.zones:
            return ACCEPT
        hit = self._cache.get(ip)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self._inflight.get(ip)
        if task is None:
            task = self._inflight[ip] = asyncio.ensure_future(self._lookup(ip))
            task.add_done_callback(lambda t: self._remember(ip, t))
        return await asyncio.shield(task)  # one caller giving up does not cancel the others' lookup

    def _remember(self, ip: str, task: asyncio.Future[Verdict]) -> None:
        self._inflight.pop(ip, None)
        if task.cancelled() or task.exception() is not None:
            return
        while len(self._cache) >= CACHE_SIZE:  # oldest first (dicts keep insertion order)
            self._cache.pop(next(iter(self._cache)))
        self._cache[ip] = (time.monotonic() + self.cache_seconds, task.result())

    async def _lookup(self, ip: str) -> Verdict:
        tasks = {zone: asyncio.ensure_future(self._zone(ip, zone)) for zone in self.zones}
        _, pending = await asyncio.wait(tasks.values(), timeout=self.budget)
        for zone, task in tasks.items():
            if task in pending:
                task.cancel()
                log.event("dnsbl.timeout", level="warn", ip=ip, zone=zone, budget=f"{self.budget:g}s")
            elif (why := task.result()) is not None:
                text = f"Service unavailable; client host [{ip}] blocked using {zone}" + (f"; {why}" if why else "")
                log.event("dnsbl.listed", level="warn", ip=ip, zone=zone, text=why or None)
                return Verdict(Action.REJECT, reply=Reply(554, "5.7.1", text), note=f"listed in {zone}")
        return ACCEPT

    async def _zone(self, ip: str, zone: str) -> str | None:
        """None: not listed (or the lookup failed); otherwise the listing's TXT ("" without one)."""
        name = query_name(ip, zone)
        if name is None:
            return None
        try:
            answers = await self.resolver.a(name)
        except NXDomain:
            return None
        except DNSError as e:
            log.event("dnsbl.lookup_failed", level="warn", ip=ip, zone=zone, error=str(e))
            return None
        listed = [a for a in answers if ipaddress.ip_address(a) in _LOOPBACK8 and ipaddress.ip_address(a) not in _REFUSED]
        if not listed:
            if answers:
                log.event("dnsbl.ignored_answer", level="warn", ip=ip, zone=zone, answer=",".join(answers[:4]))
            return None
        try:
            txt = await self.resolver.txt(name)
        except DNSError:
            txt = []
        return printable(txt[0]) if txt else ""
