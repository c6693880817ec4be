"""The one blocking DNS door of mail authentication, built on dnspython.

pyspf and dkimpy are synchronous libraries that run in worker threads; they get their answers from here, never
from their own module-level resolvers, so every SPF, DKIM and DMARC lookup goes to ``[delivery] nameservers``
(CONTRACT: "Every DNS lookup … goes through [delivery] nameservers"). Kept private to ``courrier.mailauth``: the
event-loop side of the server has its own async resolver.

Failure model (RFC 7208 §5/§2.6.6, RFC 6376 §6.1.2, RFC 7489 §6.6.3): NXDOMAIN and NODATA are answers (an empty
list); so is a name that DNS cannot hold (a bad escape, an empty or over-long label, a name IDNA refuses: hostile
mail is full of them, and nothing can be published there). A timeout, SERVFAIL, an unreachable server or any other
dnspython failure is a ``TempDNSError`` — the caller turns it into *temperror*. Nothing else leaves ``query``.

Budget (``[auth] check_timeout``): a ``LookupLog`` may carry a deadline for the whole check. Each question then gets
at most the time left; past the deadline no question is asked (``TempDNSError`` at once), so a check against a
silent nameserver ends when its budget does, and its worker thread with it. The question that was cut short is kept
as ``LookupLog.hung`` for the one log line that names it.
"""

from __future__ import annotations

import time
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
    """The questions asked during one check (not shared between checks: one per message), and its time budget.

    ``deadline`` is a ``time.monotonic()`` instant (None: no budget); ``hung`` is the first question the budget cut
    short (e.g. ``Lookup("_dmarc.example.org", "TXT", (), "timeout")``).
    """

    entries: list[Lookup] = field(default_factory=list)
    deadline: float | None = None
    hung: Lookup | None = None
    skipped: int = 0  # questions not asked because the budget was spent

    @property
    def over_budget(self) -> bool:
        return self.hung is not None or self.skipped > 0

    def add(self, entry: Lookup) -> None:
        if len(self.entries) < 200:  # a bound: a hostile SPF record cannot grow this without limit
            self.entries.append(entry)

    def remaining(self) -> float | None:
        """Seconds left in the budget (never negative); None without a budget."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


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
        """The rdata of ``name``/``rdtype`` (CNAMEs followed); [] for NXDOMAIN, no record of that type, or a name DNS
        cannot hold. Raises only ``TempDNSError``."""
        if self._error:
            raise TempDNSError(self._error)
        try:
            qname = dns.name.from_text(name)  # BadEscape, EmptyLabel, LabelTooLong, NameTooLong, IDNAException…
        except (dns.exception.DNSException, UnicodeError, ValueError):
            self._note(log, name, rdtype, (), "invalid name")
            return []  # not a name DNS can hold: nothing there (RFC 7208 §4.3)
        lifetime = min(timeout, self.timeout) if timeout else self.timeout
        left = log.remaining() if log is not None else None
        if left is not None:
            if left <= 0 and log is not None:
                log.skipped += 1
                self._note(log, name, rdtype, (), "not asked: check budget spent")
                raise TempDNSError(f"check budget spent before {rdtype} {name}")
            lifetime = min(lifetime, left)
        try:
            answer = self._resolver.resolve(qname, rdtype, lifetime=lifetime, search=False,
                                            raise_on_no_answer=False)
            out = list(answer) if answer.rrset is not None else []
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            out = []
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as e:
            entry = self._note(log, name, rdtype, (), "timeout")
            if log is not None and left is not None and lifetime >= left and log.hung is None:
                log.hung = entry  # the budget, not the per-question timeout, ended this one
            raise TempDNSError(f"DNS timeout for {name}/{rdtype}") from e
        except dns.resolver.NoNameservers as e:
            self._note(log, name, rdtype, (), "servfail")
            raise TempDNSError(f"DNS server failure for {name}/{rdtype}") from e
        except Exception as e:  # any other dnspython failure (bad packet, socket error…): try again later
            self._note(log, name, rdtype, (), type(e).__name__)
            raise TempDNSError(f"DNS error for {name}/{rdtype}: {e}") from e
        self._note(log, name, rdtype, tuple(r.to_text() for r in out), None)
        return out

    def txt(self, name: str, timeout: float | None = None, log: LookupLog | None = None) -> list[bytes]:
        """Each TXT record of ``name`` with its character-strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [b"".join(r.strings) for r in self.query(name, "TXT", timeout, log)]

    @staticmethod
    def _note(log: LookupLog | None, name: str, rdtype: str, answers: tuple[str, ...], error: str | None) -> Lookup:
        entry = Lookup(name.rstrip("."), rdtype, answers, error)
        if log is not None:
            log.add(entry)
        return entry

