"""One async DNS resolver for everything courrier looks up: MX, A/AAAA, TXT, PTR — and the MX delivery plan.

Built on dnspython's asyncio resolver. Free of server imports so the outbound MTA, the mail-authentication checks
(SPF, DKIM, DMARC) and the CLI share it. Every lookup goes to the configured nameservers (``[delivery] nameservers``)
or, with none given, to the system's (``/etc/resolv.conf``).

API (all coroutines on :class:`Resolver`)::

    r = Resolver(["127.0.0.1:5353"])          # or Resolver() for the system resolver
    await r.mx("example.org")    -> [(10, "mx1.example.org"), …]   sorted by preference; [] when the name has none
    await r.a(name) / r.aaaa(name) / r.addresses(name) -> ["192.0.2.1", …]
    await r.txt(name)            -> ["v=spf1 -all", …]  (character-strings of one record joined, RFC 7208 §3.3)
    await r.ptr(ip)              -> ["host.example.org", …]
    await r.mx_plan(domain)      -> MXPlan: the hosts to try, in order, with their addresses (RFC 5321 §5.1)
    await r.secure(name, "TLSA") -> ([rdata, …], authenticated)   authenticated = the answer carried the AD bit

Answers are kept for their TTL (RFC 1035 §3.2.1) in a small per-resolver cache in front of dnspython's: a hit is one
dict lookup instead of building a query, which matters on the relay's path (MX, A, AAAA, the ``_mta-sts`` TXT and the
TLSA name for every message). Expiry follows dnspython's rule: the least TTL along the answer's CNAME chain; for a
negative answer (NXDOMAIN, NODATA) the SOA's negative TTL (RFC 2308 §5: min of its TTL and MINIMUM field), or
300 s without an SOA. Failures (timeouts, SERVFAIL) are never kept.

DNSSEC: courrier does not validate signatures itself. Queries ask for the AD bit (RFC 6840 §5.7), and
:meth:`Resolver.secure` reports whether the configured resolver set it — meaningful only when that resolver validates
and the path to it is trusted (a resolver on loopback), which is what DANE (RFC 7672) relies on.

Errors: :class:`NXDomain` (the name does not exist — permanent), :class:`DNSTempError` (timeout, SERVFAIL, no
nameserver answered — try again later). Both derive from :class:`DNSError`. "No record of that type" is not an error:
it is an empty list.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.name
import dns.nameserver
import dns.resolver
import dns.reversename


class DNSError(Exception):
    """A lookup that produced no usable answer."""

    temporary = True


class DNSTempError(DNSError):
    """Timeout, SERVFAIL or no reachable nameserver: the answer may exist, ask again later."""

    temporary = True


class NXDomain(DNSError):
    """The name does not exist (RCODE 3): a permanent answer."""

    temporary = False


def parse_nameserver(spec: str | tuple[str, int]) -> tuple[str, int]:
    """``"IP"``, ``"IP:PORT"``, ``"[v6]:PORT"`` or ``(ip, port)`` → (ip, port)."""
    if isinstance(spec, tuple):
        return spec[0], int(spec[1])
    s = spec.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif s.count(":") == 1:
        host, _, p = s.partition(":")
        port = int(p)
    else:
        host, port = s, 53
    ipaddress.ip_address(host)  # nameservers are addresses, never names (no chicken-and-egg)
    return host, port


@dataclass(frozen=True)
class MXHost:
    preference: int
    host: str
    addresses: tuple[str, ...] = ()
    error: str | None = None  # why this host has no address (shown by `courrier mx`)


@dataclass
class MXPlan:
    """What the MTA will do for a domain.

    ``kind``: "mx" (MX records), "implicit" (no MX: the domain's own address, RFC 5321 §5.1), "null" (RFC 7505: the
    domain accepts no mail — permanent failure), "nxdomain" (permanent), "none" (MX hosts with no address at all), or
    "tempfail" (a lookup failed temporarily — retry later). ``notes`` explain the fallbacks in plain words.
    """

    domain: str
    kind: str
    hosts: list[MXHost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def deliverable(self) -> bool:
        return any(h.addresses for h in self.hosts)

    @property
    def permanent_failure(self) -> bool:
        return self.kind in ("null", "nxdomain", "none")


class Resolver:
    """Async resolver bound to a fixed list of nameservers (or the system's)."""

    def __init__(self, nameservers: Iterable[str | tuple[str, int]] = (), *, timeout: float = 5.0,
                 lifetime: float = 10.0, rng: random.Random | None = None) -> None:
        servers = [parse_nameserver(s) for s in nameservers]
        if servers:
            self._r = dns.asyncresolver.Resolver(configure=False)
            self._r.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in servers]
        else:
            self._r = dns.asyncresolver.Resolver()
        self._r.flags = dns.flags.RD | dns.flags.AD  # RFC 6840 §5.7: ask for the validation verdict
        self._r.timeout = timeout
        self._r.lifetime = lifetime
        self._r.cache = dns.resolver.LRUCache(4096)  # honours TTLs; one cache per resolver, not global
        self._rng = rng or random.SystemRandom()
        self.nameservers = servers
        # (name, rdtype) → (expires, records, AD bit) or (expires, NXDomain): see the module docstring
        self._answers: dict[tuple[str, str], tuple[float, list[object], bool] | tuple[float, NXDomain]] = {}
        self.cache_size = 4096
        self._inflight: dict[tuple[str, str], asyncio.Future[tuple[list[object], bool]]] = {}
        self._plans: dict[str, tuple[float, MXPlan]] = {}  # domain → (expires, MX plan): see mx_plan

    async def _query(self, name: str, rdtype: str) -> list[object]:
        return (await self._answer(name, rdtype))[0]

    async def _answer(self, name: str, rdtype: str) -> tuple[list[object], bool]:
        key = (name.lower(), rdtype)
        hit = self._answers.get(key)
        if hit is not None:
            if hit[0] > time.time():
                if len(hit) == 2:
                    raise NXDomain(str(hit[1]))
                return list(hit[1]), hit[2]  # type: ignore[misc]
            del self._answers[key]
        # one query per name and type in flight: the many messages to one domain that start at once share it
        pending = self._inflight.get(key)
        if pending is not None:
            try:
                records, ad = await asyncio.shield(pending)
            except DNSError as e:
                raise type(e)(str(e)) from None  # an exception of its own for each waiter
            return list(records), ad
        fut = self._inflight[key] = asyncio.get_running_loop().create_future()
        try:
            records, ad = await self._lookup(key, name, rdtype)
        except BaseException as e:
            fut.set_exception(e if isinstance(e, DNSError) else DNSTempError(f"{name} {rdtype}: {_short(e)}"))
            raise
        else:
            fut.set_result((records, ad))
        finally:
            del self._inflight[key]
            if fut.done() and not fut.cancelled():
                fut.exception()  # retrieved: a failure nobody else waited for is not "never retrieved"
        return list(records), ad

    async def _lookup(self, key: tuple[str, str], name: str, rdtype: str) -> tuple[list[object], bool]:
        try:
            ans = await self._r.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN as e:
            err = NXDomain(f"{name}: no such domain")
            ttl = _negative_ttl(e)
            if ttl > 0:
                self._keep(key, (time.time() + ttl, err))
            raise err from None
        except dns.resolver.NoNameservers as e:
            raise DNSTempError(f"{name} {rdtype}: no nameserver answered ({_short(e)})") from None
        except dns.exception.Timeout:
            raise DNSTempError(f"{name} {rdtype}: DNS timeout") from None
        except (dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as e:
            raise NXDomain(f"{name}: bad name ({_short(e)})") from None
        except dns.exception.DNSException as e:
            raise DNSTempError(f"{name} {rdtype}: {_short(e)}") from None
        records, ad = list(ans.rrset or []), bool(ans.response.flags & dns.flags.AD)
        if float(ans.expiration) > time.time():
            self._keep(key, (float(ans.expiration), records, ad))
        return list(records), ad

    def _keep(self, key: tuple[str, str], value: tuple[float, list[object], bool] | tuple[float, NXDomain]) -> None:
        if len(self._answers) >= self.cache_size:
            now = time.time()
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
            if len(self._answers) >= self.cache_size:
                self._answers.clear()
        self._answers[key] = value

    async def secure(self, name: str, rdtype: str) -> tuple[list[object], bool]:
        """The records (dnspython rdata) and whether the resolver vouched for them (AD bit, RFC 4035 §3.2.3)."""
        return await self._answer(name, rdtype)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """MX records sorted by preference; the null MX is returned as ``[(0, "")]``."""
        out = []
        for rr in await self._query(domain, "MX"):
            host = rr.exchange.to_text(omit_final_dot=True).lower()  # type: ignore[attr-defined]
            out.append((int(rr.preference), "" if host in ("", ".") else host))  # type: ignore[attr-defined]
        return sorted(out)

    async def a(self, name: str) -> list[str]:
        return [rr.address for rr in await self._query(name, "A")]  # type: ignore[attr-defined]

    async def aaaa(self, name: str) -> list[str]:
        return [rr.address for rr in await self._query(name, "AAAA")]  # type: ignore[attr-defined]

    async def addresses(self, name: str) -> list[str]:
        """IPv4 then IPv6 addresses of a host (IPv4 first: the route most hosts can actually use)."""
        if _is_ip(name):
            return [name]
        # both questions at once: a first delivery waits for one round trip, not two
        got = await asyncio.gather(self.a(name), self.aaaa(name), return_exceptions=True)
        for r in got:
            if isinstance(r, BaseException) and not isinstance(r, DNSTempError):
                raise r  # NXDomain (the A answer's first), or a bug
        v4, v6 = ([] if isinstance(r, BaseException) else r for r in got)
        temp = next((r for r in got if isinstance(r, DNSTempError)), None)
        if not (v4 or v6) and temp:
            raise temp
        return v4 + v6  # type: ignore[operator]

    async def txt(self, name: str) -> list[str]:
        """TXT records, each one's character-strings concatenated (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        out = []
        for rr in await self._query(name, "TXT"):
            out.append(b"".join(rr.strings).decode("utf-8", "replace"))  # type: ignore[attr-defined]
        return out

    async def ptr(self, ip: str) -> list[str]:
        rev = dns.reversename.from_address(ip).to_text()
        return [rr.target.to_text(omit_final_dot=True) for rr in await self._query(rev, "PTR")]  # type: ignore[attr-defined]

    def plan_kept(self, domain: str) -> bool:
        """Whether ``mx_plan(domain)`` would answer from what is kept (no query)."""
        kept = self._plans.get(domain.rstrip(".").lower())
        return kept is not None and kept[0] > time.time()

    async def mx_plan(self, domain: str) -> MXPlan:
        """The delivery plan for ``domain`` (RFC 5321 §5.1, RFC 7505), equal preferences in random order.

        A plan is kept as long as every answer it was made of (the relay asks for one per message); each call
        shuffles the equal preferences again."""
        domain = domain.rstrip(".").lower()
        kept = self._plans.get(domain)
        if kept is not None:
            if kept[0] > time.time():
                return self._reshuffled(kept[1])
            del self._plans[domain]
        plan = await self._make_plan(domain)
        if plan.kind in ("mx", "implicit", "null", "none", "nxdomain"):
            keys = [(domain, "MX")] + [(h.host, t) for h in plan.hosts for t in ("A", "AAAA") if not _is_ip(h.host)]
            if plan.kind == "implicit":
                keys += [(domain, "A"), (domain, "AAAA")]
            hits = [self._answers.get(k) for k in keys]
            if all(h is not None for h in hits):
                if len(self._plans) >= self.cache_size:
                    self._plans.clear()
                self._plans[domain] = (min(h[0] for h in hits if h is not None), plan)
                return self._reshuffled(plan)
        return plan

    def _reshuffled(self, plan: MXPlan) -> MXPlan:
        hosts: list[MXHost] = []
        for pref in sorted({h.preference for h in plan.hosts}):
            same = [h for h in plan.hosts if h.preference == pref]
            if len(same) > 1:
                self._rng.shuffle(same)  # RFC 5321 §5.1: spread load among equal preferences
            hosts += same
        return MXPlan(plan.domain, plan.kind, hosts, list(plan.notes))

    async def _make_plan(self, domain: str) -> MXPlan:
        plan = MXPlan(domain, "mx")
        if domain.startswith("[") and domain.endswith("]"):  # address literal: deliver straight to it
            ip = domain[1:-1].removeprefix("IPv6:")
            plan.kind = "literal"
            plan.hosts = [MXHost(0, ip, (ip,))]
            plan.notes.append("address literal: no DNS lookup")
            return plan
        try:
            records = await self.mx(domain)
        except NXDomain:
            plan.kind = "nxdomain"
            plan.notes.append(f"{domain} does not exist (NXDOMAIN): mail to it bounces")
            return plan
        except DNSTempError as e:
            plan.kind = "tempfail"
            plan.notes.append(f"MX lookup failed temporarily: {e}; delivery will be retried")
            return plan
        if any(host == "" for _, host in records):
            if len(records) == 1 and records[0][0] == 0:
                plan.kind = "null"
                plan.notes.append("null MX (RFC 7505): the domain accepts no mail; messages bounce at once")
                return plan
            plan.notes.append("a \".\" MX among others is ignored (RFC 7505 §3)")
            records = [r for r in records if r[1]]
        if not records:
            plan.kind = "implicit"
            plan.notes.append("no MX records: the domain's own address is used (implicit MX, RFC 5321 §5.1)")
            records = [(0, domain)]
        ordered: list[tuple[int, str]] = []
        for pref in sorted({p for p, _ in records}):
            same = [h for p, h in records if p == pref]
            self._rng.shuffle(same)  # RFC 5321 §5.1: spread load among equal preferences
            ordered += [(pref, h) for h in same]
        temp = False
        for pref, host in ordered:
            try:
                addrs = tuple(await self.addresses(host))
                plan.hosts.append(MXHost(pref, host, addrs, None if addrs else "no A/AAAA record"))
            except NXDomain:
                plan.hosts.append(MXHost(pref, host, (), "host does not exist (NXDOMAIN)"))
            except DNSTempError as e:
                temp = True
                plan.hosts.append(MXHost(pref, host, (), f"temporary DNS failure: {e}"))
        if not plan.deliverable:
            if plan.kind == "implicit":
                plan.kind = "tempfail" if temp else "none"
                if not temp:
                    plan.notes.append(f"{domain} has neither MX nor address records: mail to it bounces")
            else:
                plan.kind = "tempfail" if temp else "none"
                if not temp:
                    plan.notes.append("no MX host has an address: mail to this domain bounces")
            if temp:
                plan.notes.append("address lookups failed temporarily; delivery will be retried")
        return plan


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _negative_ttl(e: dns.resolver.NXDOMAIN) -> float:
    """How long an NXDOMAIN may be kept (dnspython's rule, as for its own cache); 0 when unknown."""
    try:
        return min((r.resolve_chaining().minimum_ttl for r in e.responses().values()), default=0)
    except (dns.exception.DNSException, AttributeError, KeyError, TypeError):
        return 0


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


__all__: Sequence[str] = ("DNSError", "DNSTempError", "NXDomain", "MXHost", "MXPlan", "Resolver", "parse_nameserver")
