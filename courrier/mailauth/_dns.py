"""The one blocking DNS door of mail authentication, built on dnspython.

pyspf and dkimpy are synchronous libraries that run in worker threads; they get their answers from here, never
from their own module-level resolvers, so every SPF, DKIM and DMARC lookup goes to ``[delivery] nameservers``
(CONTRACT: "Every DNS lookup … goes through [delivery] nameservers"). Kept private to ``courrier.mailauth``: the
event-loop side of the server has its own async resolver.

Failure model (RFC 7208 §5/§2.6.6, RFC 6376 §6.1.2, RFC 7489 §6.6.3): NXDOMAIN and NODATA are answers (an empty
list); a timeout, SERVFAIL or an unreachable server is a ``TempDNSError`` — the caller turns it into *temperror*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

DEFAULT_TIMEOUT = 5.0  # seconds per question, all retries included (RFC 7208 §4.6.4 asks for ≥ 20 s per check)


class TempDNSError(Exception):
    """The DNS could not answer now (timeout, SERVFAIL, no server reachable): a temporary error."""


@dataclass(frozen=True)
class Lookup:
    """One question and what came back, kept for the human report of ``courrier check``."""

    name: str
    rdtype: str
    answers: tuple[str, ...]
    error: str | None = None


@dataclass
class LookupLog:
    """The questions asked during one check (not shared between checks: one per message)."""

    entries: list[Lookup] = field(default_factory=list)

    def add(self, entry: Lookup) -> None:
        if len(self.entries) < 200:  # a bound: a hostile SPF record cannot grow this without limit
            self.entries.append(entry)


class Resolver:
    """Blocking lookups against the configured nameservers (``(host, port)`` pairs; none: /etc/resolv.conf)."""

    def __init__(self, nameservers: Iterable[tuple[str, int]] = (), timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        servers = list(nameservers)
        self._error: str | None = None
        if servers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in servers]
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                self._resolver = dns.resolver.Resolver(configure=False)
                self._error = "no nameservers configured and no /etc/resolv.conf"
        self._resolver.timeout = min(2.0, timeout)
        self._resolver.lifetime = timeout
        self._resolver.cache = None  # answers may change between checks (and between test steps)

    def query(self, name: str, rdtype: str, timeout: float | None = None, log: LookupLog | None = None) -> list[Any]:
        """The rdata of ``name``/``rdtype`` (CNAMEs followed); [] for NXDOMAIN or no record of that type."""
        if self._error:
            raise TempDNSError(self._error)
        lifetime = min(timeout, self.timeout) if timeout else self.timeout
        try:
            answer = self._resolver.resolve(name, rdtype, lifetime=lifetime, search=False,
                                            raise_on_no_answer=False)
            out = list(answer) if answer.rrset is not None else []
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            out = []
        except dns.resolver.YXDOMAIN:
            out = []
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as e:
            self._note(log, name, rdtype, (), "timeout")
            raise TempDNSError(f"DNS timeout for {name}/{rdtype}") from e
        except dns.resolver.NoNameservers as e:
            self._note(log, name, rdtype, (), "servfail")
            raise TempDNSError(f"DNS server failure for {name}/{rdtype}") from e
        except (dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.EmptyLabel):
            self._note(log, name, rdtype, (), "invalid name")
            return []  # not a name DNS can hold: nothing there (RFC 7208 §4.3)
        except dns.exception.DNSException as e:
            self._note(log, name, rdtype, (), type(e).__name__)
            raise TempDNSError(f"DNS error for {name}/{rdtype}: {e}") from e
        self._note(log, name, rdtype, tuple(r.to_text() for r in out), None)
        return out

    def txt(self, name: str, timeout: float | None = None, log: LookupLog | None = None) -> list[bytes]:
        """Each TXT record of ``name`` with its character-strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [b"".join(r.strings) for r in self.query(name, "TXT", timeout, log)]

    @staticmethod
    def _note(log: LookupLog | None, name: str, rdtype: str, answers: tuple[str, ...], error: str | None) -> None:
        if log is not None:
            log.add(Lookup(name.rstrip("."), rdtype, answers, error))

