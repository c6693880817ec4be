"""A small authoritative DNS server for tests, built on ``dnslib``, answering from a dict on 127.0.0.1 (UDP + TCP).

Real resolvers (dnspython, pyspf, dkimpy…) talk to it over real sockets, so the code under test runs unchanged; point
``[delivery] nameservers`` at ``fake.address``. Shared by the outbound-MTA and mail-authentication tests.

Records, keyed by name (case-insensitive, trailing dot optional)::

    records = {
        "b.test": {"MX": [(10, "mx1.b.test"), (20, "mx2.b.test")], "TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "mx1.b.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
        "www.b.test": {"CNAME": "mx1.b.test"},        # followed for every other type, as a real server does
        "null.test": {"MX": [(0, ".")]},               # RFC 7505 null MX
        "gone.test": NXDOMAIN,                         # also the answer for any name not in the dict
        "broken.test": SERVFAIL,
        "slow.test": TIMEOUT,                          # no answer at all: the client times out
        "_25._tcp.mx1.b.test": {"TLSA": [(3, 1, 1, "ab12…")], "AD": True},   # DANE (RFC 7672), "validated"
    }

``"AD": True`` in an entry sets the AD bit (RFC 4035 §3.2.3) in every answer for that name — what a validating
resolver does for a signed zone — so DNSSEC-dependent code (DANE) can be tested without signing anything. TLSA
values are (usage, selector, matching type, data as bytes or hex). ``"TTL": 0`` makes a name's answers uncacheable,
for tests that change a record between lookups of one resolver.

A name present with no record of the asked type answers NOERROR with an empty answer (NODATA). TXT values longer than
255 octets are split into several character-strings, as DKIM keys are published. ``fake.records`` may be changed
while the server runs (``fake.set(name, {...})``); ``fake.queries`` records every (name, type) asked.

Usage: ``with FakeDNS(records) as dns: ...`` or the ``fake_dns`` pytest fixture (import it into your test folder's
conftest.py: ``from tests.dnsfake import fake_dns  # noqa: F401``), which starts an empty server to fill with ``set``.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import dnslib
import pytest
from dnslib.server import DNSError, DNSHandler, DNSServer

NXDOMAIN = "NXDOMAIN"
SERVFAIL = "SERVFAIL"
TIMEOUT = "TIMEOUT"

TTL = 60


def _norm(name: Any) -> str:
    return str(name).rstrip(".").lower()


class _QuietLogger:
    """dnslib logs every packet to stdout by default; tests want silence."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def _rr(name: str, rtype: str, value: Any, ttl: int = TTL) -> dnslib.RR:
    q = getattr(dnslib.QTYPE, rtype)
    if rtype == "A":
        rdata: Any = dnslib.A(value)
    elif rtype == "AAAA":
        rdata = dnslib.AAAA(value)
    elif rtype == "MX":
        pref, host = value
        rdata = dnslib.MX(host if host != "." else ".", pref)
    elif rtype == "CNAME":
        rdata = dnslib.CNAME(value)
    elif rtype == "TXT":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        rdata = dnslib.TXT([raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""])
    elif rtype == "PTR":
        rdata = dnslib.PTR(value)
    elif rtype == "NS":
        rdata = dnslib.NS(value)
    elif rtype == "TLSA":
        usage, selector, mtype, data = value
        rdata = dnslib.TLSA(usage, selector, mtype, bytes.fromhex(data) if isinstance(data, str) else bytes(data))
    else:
        raise ValueError(f"fake DNS: unsupported record type {rtype}")
    return dnslib.RR(name, q, rdata=rdata, ttl=ttl)


class _Resolver:
    def __init__(self, owner: FakeDNS) -> None:
        self.owner = owner

    def resolve(self, request: dnslib.DNSRecord, handler: DNSHandler) -> dnslib.DNSRecord:
        reply = request.reply()
        reply.header.aa = 1
        reply.header.ad = 0  # dnslib copies the query's flags; AD is ours to say (below)
        qname = _norm(request.q.qname)
        qtype = dnslib.QTYPE[request.q.qtype]
        with self.owner.lock:
            self.owner.queries.append((qname, qtype))
            records = dict(self.owner.records)
        name = qname
        for _ in range(8):  # follow a CNAME chain (bounded)
            entry = records.get(name, NXDOMAIN)
            if entry == TIMEOUT:
                raise DNSError("fake timeout: no reply")  # the handler sends nothing
            if entry == SERVFAIL:
                reply.header.rcode = dnslib.RCODE.SERVFAIL
                return reply
            if entry == NXDOMAIN:
                reply.header.rcode = dnslib.RCODE.NXDOMAIN
                self._negative(reply, name)
                return reply
            assert isinstance(entry, Mapping), f"fake DNS: bad entry for {name}: {entry!r}"
            if entry.get("AD"):
                reply.header.ad = 1
            if "CNAME" in entry and qtype != "CNAME":
                target = _norm(entry["CNAME"])
                reply.add_answer(_rr(name + ".", "CNAME", target + "."))
                name = target
                continue
            values = entry.get(qtype, []) if qtype not in ("AD", "TTL") else []
            if isinstance(values, str | tuple):
                values = [values]
            for v in values:
                if qtype in ("MX",):
                    v = (v[0], v[1] if v[1] == "." else _norm(v[1]) + ".")
                elif qtype in ("CNAME", "PTR", "NS"):
                    v = _norm(v) + "."
                reply.add_answer(_rr(name + ".", qtype, v, entry.get("TTL", TTL)))
            if not values:
                self._negative(reply, name)
            return reply
        reply.header.rcode = dnslib.RCODE.SERVFAIL
        return reply


    def _negative(self, reply: dnslib.DNSRecord, name: str) -> None:
        """With ``negative_ttl``: the zone's SOA in the authority section, as an authoritative server sends with
        NXDOMAIN and NODATA (RFC 2308 §3), so resolvers may keep the negative answer that long (§5)."""
        ttl = self.owner.negative_ttl
        if ttl is None:
            return
        zone = ".".join(name.split(".")[-2:]) + "."
        soa = dnslib.SOA("ns." + zone, "hostmaster." + zone, (1, 3600, 600, 86400, ttl))
        reply.add_auth(dnslib.RR(zone, dnslib.QTYPE.SOA, rdata=soa, ttl=ttl))


class _UDP(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


class _TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class FakeDNS:
    """The server; ``address`` is ``"127.0.0.1:PORT"`` (what ``[delivery] nameservers`` takes)."""

    def __init__(self, records: Mapping[str, Any] | None = None, *, negative_ttl: int | None = None) -> None:
        self.negative_ttl = negative_ttl  # None: negative answers without an SOA (never cached by resolvers)
        self.lock = threading.Lock()
        self.records: dict[str, Any] = {}
        self.queries: list[tuple[str, str]] = []
        for k, v in (records or {}).items():
            self.records[_norm(k)] = v
        self._servers: list[DNSServer] = []
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, entry: Any) -> None:
        """Adds or replaces one name's records (a dict of type → values, or NXDOMAIN/SERVFAIL/TIMEOUT)."""
        with self.lock:
            self.records[_norm(name)] = entry

    def update(self, records: Mapping[str, Any]) -> None:
        for k, v in records.items():
            self.set(k, v)

    def start(self) -> FakeDNS:
        resolver, logger = _Resolver(self), _QuietLogger()
        for _ in range(20):  # the UDP port is picked by the kernel; TCP must get the same number
            udp = DNSServer(resolver, "127.0.0.1", 0, logger=logger, server=_UDP)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, "127.0.0.1", port, tcp=True, logger=logger, server=_TCP)
            except OSError:
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for s in self._servers:
                threading.Thread(target=s.server.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True, name=f"fakedns-{port}").start()
            return self
        raise RuntimeError("fake DNS: no free UDP+TCP port pair")

    def stop(self) -> None:
        for s in self._servers:
            s.server.shutdown()
            s.server.server_close()
        self._servers = []

    def __enter__(self) -> FakeDNS:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@pytest.fixture
def fake_dns() -> Iterator[FakeDNS]:
    """An empty FakeDNS on 127.0.0.1, stopped after the test; fill it with ``fake_dns.set(name, {...})``."""
    with FakeDNS() as dns:
        yield dns
