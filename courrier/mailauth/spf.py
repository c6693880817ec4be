"""SPF (RFC 7208) for the HELO and MAIL FROM identities, by pyspf, with its DNS routed through our resolver.

pyspf reads DNS through its module-global ``spf.DNSLookup``. Replacing that global would make every concurrent
check share one resolver, so instead each ``_Query`` gets its own copy of pyspf's ``query.dns`` method whose global
``DNSLookup`` name points at this check's resolver: pyspf's caching, CNAME handling and RFC 7208 §4.6.4 lookup limits
stay exactly as written and tested upstream, and nothing global changes.

Blocking: call ``check_spf`` from a worker thread, never on the event loop.

Never raises (RFC 7208 §2.6: every outcome is one of the seven results). pyspf's own ``TempError``/``PermError``
become temperror/permerror inside ``query.check``; our resolver's ``TempDNSError`` (timeout, SERVFAIL, check budget
spent) is handed to pyspf as its ``TempError``; anything else pyspf raises on input it did not expect (a NUL or
8-bit octet in a HELO name or local part, a macro that expands to garbage) is *permerror*, "cannot evaluate".
"""

from __future__ import annotations

import ipaddress
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import spf as pyspf

from courrier.mailauth._dns import LookupLog, Resolver, TempDNSError

# RFC 7208 §2.6: the seven results. pyspf's older names map onto them (RFC 4408 "unknown"/"error").
RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
_OLD = {"unknown": "permerror", "error": "temperror", "ambiguous": "permerror"}

QUERY_TIME = 20.0  # RFC 7208 §4.6.4: at least 20 seconds for the whole check


@dataclass(frozen=True)
class SPFResult:
    result: str  # one of RESULTS
    identity: str  # "mailfrom" or "helo" (RFC 7208 §2.3, §2.4)
    domain: str  # the domain whose policy was evaluated ("" when none could be)
    sender: str  # the checked identity: the MAIL FROM address, or postmaster@HELO
    ip: str
    explanation: str  # pyspf's text: the exp= explanation on fail, or why (permerror/temperror)
    record: str | None = None  # the SPF record of ``domain`` when one was found

    @property
    def comment(self) -> str:
        """The human reason for the Authentication-Results comment (RFC 8601 §2.3)."""
        d = self.domain or "the domain"
        return {
            "pass": f"{d}: {self.ip} is permitted",
            "fail": f"{d}: {self.ip} is not permitted",
            "softfail": f"{d}: {self.ip} is not permitted (softfail)",
            "neutral": f"{d}: {self.ip} is neither permitted nor denied",
            "none": f"{d} publishes no SPF record" if self.domain else "no domain to check",
        }.get(self.result, self.explanation)


def _lookup_for(resolver: Resolver, log: LookupLog | None) -> Any:
    """A ``DNSLookup(name, qtype, strict, timeout)`` for pyspf that asks ``resolver``."""

    def lookup(name: str, qtype: str, strict: Any = True, timeout: float | None = None) -> Iterator[Any]:
        try:
            rdatas = resolver.query(name, qtype, timeout, log)
        except TempDNSError as e:
            raise pyspf.TempError(f"DNS {e}") from None
        key = (name, qtype)
        out = []
        for r in rdatas:
            if qtype in ("A", "AAAA"):
                out.append((key, r.address))
            elif qtype == "MX":
                out.append((key, (r.preference, r.exchange.to_text(omit_final_dot=True))))
            elif qtype == "PTR":
                out.append((key, r.target.to_text(omit_final_dot=True)))
            elif qtype in ("TXT", "SPF"):
                out.append((key, tuple(r.strings)))
        return iter(out)

    return lookup


class _Query(pyspf.query):
    """A pyspf query whose ``dns`` method asks our resolver (see the module docstring)."""

    def __init__(self, *args: Any, lookup: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        original = pyspf.query.dns
        scope = dict(original.__globals__, DNSLookup=lookup)
        fn = types.FunctionType(original.__code__, scope, original.__name__, original.__defaults__,
                                original.__closure__)
        self.dns = types.MethodType(fn, self)  # type: ignore[method-assign]

    def validated_ptrs(self) -> list[str]:
        """RFC 7208 §5.5: at most 10 PTR names; a DNS error on one name's A/AAAA skips that name, not the check.

        (pyspf lets the error end the whole check with temperror; the RFC says "the search continues".)
        """
        out = []
        for name in self.dns_ptr(self.i)[:pyspf.MAX_PTR]:
            try:
                addresses = self.dns_a(name, self.A)
            except pyspf.TempError:
                continue
            if self.cidrmatch(addresses, self.cidrmax):
                out.append(name)
        return out


def check_spf(resolver: Resolver, ip: str, mail_from: str, helo: str, *, receiver: str = "unknown",
              default_explanation: str | None = None, log: LookupLog | None = None) -> SPFResult:
    """Evaluates SPF for ``mail_from`` (or for the HELO identity when ``mail_from`` is empty, RFC 7208 §2.4).

    ``receiver`` is our hostname (the ``%{r}`` macro). Never raises for DNS trouble: that is *temperror*.
    """
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return SPFResult("none", "helo" if not mail_from else "mailfrom", "", mail_from, ip,
                         f"not an IP address: {ip!r}")
    identity = "helo" if not mail_from else "mailfrom"
    try:
        q = _Query(ip, mail_from, helo, receiver=receiver, strict=True, timeout=resolver.timeout,
                   querytime=QUERY_TIME, lookup=_lookup_for(resolver, log))
        if default_explanation is not None:
            q.set_default_explanation(default_explanation)
    except Exception as e:  # pyspf cannot even start on this identity: nothing to evaluate
        return SPFResult("permerror", identity, "", mail_from, ip, f"cannot evaluate: {type(e).__name__}: {e}")
    try:
        result, _code, explanation = q.check()
    except pyspf.AmbiguityWarning as e:  # only raised in pyspf's "harsh" mode, kept for safety
        result, explanation = "permerror", str(e)
    except (pyspf.TempError, TempDNSError) as e:
        result, explanation = "temperror", str(e)
    except Exception as e:  # malformed input pyspf does not expect (never a crash, never a 451)
        result, explanation = "permerror", f"cannot evaluate: {type(e).__name__}: {e}"
    result = _OLD.get(result, result)
    if result not in RESULTS:
        result, explanation = "permerror", f"unexpected SPF result {result!r}"
    sender = getattr(q, "s", "") or mail_from
    domain = getattr(q, "d", "") or ""
    record = None
    for (name, qtype), values in getattr(q, "cache", {}).items():
        if name == domain and qtype == "TXT":
            for v in values:
                text = b"".join(v) if isinstance(v, tuple | list) else b""
                if pyspf.RE_SPF.match(text):
                    record = text.decode("utf-8", "replace")
    return SPFResult(result, getattr(q, "ident", identity), domain, sender, ip, str(explanation or ""), record)


def check_helo(resolver: Resolver, ip: str, helo: str, *, receiver: str = "unknown",
               log: LookupLog | None = None) -> SPFResult:
    """SPF for the HELO identity alone (RFC 7208 §2.3): the policy of the HELO name for ``ip``."""
    if not helo or helo.startswith("[") or "." not in helo:
        return SPFResult("none", "helo", "", helo or "", ip, "HELO is not a domain name")  # §2.3: not checkable
    return check_spf(resolver, ip, "", helo, receiver=receiver, log=log)
