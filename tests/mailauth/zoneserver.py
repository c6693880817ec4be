"""A dnslib server that answers from the ``zonedata`` of the OpenSPF test-suite YAML, with the suite's semantics.

tests/dnsfake.py serves records keyed by type; the suite needs a little more, all from its own driver (pyspf's
``test/testspf.py``): a record is a one-entry map ``{TYPE: value}``; ``TIMEOUT`` in a name's list makes every
question of a type not listed *before* it go unanswered (the client times out → temperror); ``SPF`` records are
also served as ``TXT`` unless the name lists a ``TXT`` of its own; ``TXT: NONE`` stands for "no TXT record";
a list value is one TXT record made of several character-strings; CNAMEs are followed as a recursive server would.
"""

from __future__ import annotations

import socketserver
from typing import Any

import dnslib
from dnslib.server import DNSError, DNSServer

TIMEOUT = "TIMEOUT"


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def _norm(name: str) -> str:
    return str(name).rstrip(".").lower()


def load_zone(zonedata: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Suite zone → {name: [(TYPE, value) | TIMEOUT, …]} with SPF duplicated into TXT as the suite's driver does."""
    zone: dict[str, list[Any]] = {}
    for name, records in zonedata.items():
        out: list[Any] = []
        has_txt = any(isinstance(r, dict) and "TXT" in r for r in records)
        for r in records:
            if r == TIMEOUT:
                out.append(TIMEOUT)
                continue
            (rtype, value), = r.items()
            if value == "NONE":
                continue
            out.append((rtype, value))
            if rtype == "SPF" and not has_txt:
                out.append(("TXT", value))
        zone[_norm(name)] = out
    return zone


def _rdata(rtype: str, value: Any) -> Any:
    if rtype == "A":
        return dnslib.A(value)
    if rtype == "AAAA":
        return dnslib.AAAA(value)
    if rtype == "MX":
        pref, host = value
        return dnslib.MX(host, pref)
    if rtype in ("TXT", "SPF"):
        parts = (value or [""]) if isinstance(value, list) else [value]  # no strings at all: not on the wire
        return dnslib.TXT([p.encode("utf-8") if isinstance(p, str) else p for p in parts])
    if rtype == "PTR":
        return dnslib.PTR(value)
    if rtype == "CNAME":
        return dnslib.CNAME(value)
    raise ValueError(rtype)


class _Resolver:
    def __init__(self, owner: ZoneServer) -> None:
        self.owner = owner

    def resolve(self, request: dnslib.DNSRecord, handler: Any) -> dnslib.DNSRecord:
        reply = request.reply()
        reply.header.aa = 1
        qtype = dnslib.QTYPE[request.q.qtype]
        # from the raw labels: str() would escape the spaces some macro tests put in names
        name = ".".join(label.decode("utf-8", "replace") for label in request.q.qname.label).lower()
        seen: set[str] = set()
        while True:
            records = self.owner.zone.get(name)
            if records is None:
                if not reply.rr:
                    reply.header.rcode = dnslib.RCODE.NXDOMAIN
                return reply
            answers, cname = [], None
            for r in records:
                if r == TIMEOUT:
                    if not answers and cname is None:
                        raise DNSError("suite TIMEOUT: no reply")
                    break
                rtype, value = r
                if rtype == qtype:
                    answers.append(value)
                elif rtype == "CNAME" and cname is None:
                    cname = value
            if answers or cname is None or qtype == "CNAME":
                for v in answers:
                    try:
                        rdata = _rdata(rtype=qtype, value=v)
                    except Exception:  # a deliberately malformed value (e.g. a bad A): not servable
                        continue
                    reply.add_answer(dnslib.RR(name + ".", getattr(dnslib.QTYPE, qtype), rdata=rdata, ttl=60))
                return reply
            reply.add_answer(dnslib.RR(name + ".", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME(cname), ttl=60))
            seen.add(name)
            name = _norm(cname)
            if name in seen or len(seen) > 10:
                return reply  # a CNAME loop: the chain as far as it goes


class _UDP(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


class _TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class ZoneServer:
    """UDP+TCP on 127.0.0.1; ``zone`` may be replaced between test cases (one scenario at a time)."""

    def __init__(self) -> None:
        self.zone: dict[str, list[Any]] = {}
        self.port = 0
        self._servers: list[DNSServer] = []

    def start(self) -> ZoneServer:
        for _ in range(20):
            udp = DNSServer(_Resolver(self), "127.0.0.1", 0, logger=_Quiet(), server=_UDP)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(_Resolver(self), "127.0.0.1", port, tcp=True, logger=_Quiet(), server=_TCP)
            except OSError:
                udp.server.server_close()
                continue
            self.port, self._servers = port, [udp, tcp]
            for s in self._servers:
                s.start_thread()
            return self
        raise RuntimeError("no free UDP+TCP port pair")

    def stop(self) -> None:
        for s in self._servers:
            s.server.shutdown()
            s.server.server_close()
        self._servers = []
