"""DMARC (RFC 7489): does the header From domain align with an authenticated identity, and what does it ask?

The organisational domain (RFC 7489 §3.2) comes from the Public Suffix List (publicsuffixlist's bundled copy, no
network). A message passes when SPF passed for an aligned MAIL FROM domain or a DKIM signature passed for an aligned
d= (§3.1, relaxed or strict per ``aspf``/``adkim``). Otherwise it fails, and the policy says what the domain owner
wants: ``none`` (monitor), ``quarantine`` or ``reject`` (§6.3), subdomains by ``sp`` (§6.6.3), sampled by ``pct``.

Blocking (DNS): run in a worker thread.

Never raises: a DNS failure (our resolver's ``TempDNSError``: timeout, SERVFAIL, check budget spent) is *temperror*;
anything else on input nobody expected (a From domain publicsuffixlist chokes on, a record that breaks parsing) is
*permerror* (RFC 7489 §6.6.2 step 1 / RFC 8601 §2.7.5), never an exception that would fail the SMTP transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from courrier.mailauth._dns import LookupLog, Resolver, TempDNSError
from courrier.mailauth.dkim import DKIMResult
from courrier.mailauth.spf import SPFResult

POLICIES = ("none", "quarantine", "reject")


def org_domain(psl: PublicSuffixList, domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (the domain itself when it is a suffix or unknown)."""
    domain = domain.lower().rstrip(".")
    return psl.privatesuffix(domain) or domain


@dataclass(frozen=True)
class DMARCRecord:
    domain: str  # where it was found: the From domain or its organisational domain
    raw: str
    p: str
    sp: str
    adkim: str  # "r" or "s"
    aspf: str
    pct: int


def parse_record(domain: str, text: str) -> DMARCRecord | None:
    """A record per RFC 7489 §6.3–§6.4, or None when it is not a usable DMARC record (§6.6.3: then there is none)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        k, eq, v = part.partition("=")
        if eq:
            tags.setdefault(k.strip().lower(), v.strip())
    if tags.get("v") != "DMARC1" or not text.lstrip().startswith("v"):
        return None
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        if "rua" not in tags:  # §6.6.3 step 6: invalid p, no rua → no policy at all
            return None
        p = "none"
    sp = tags.get("sp", p).lower()
    if sp not in POLICIES:
        sp = p
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    try:
        pct = max(0, min(100, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return DMARCRecord(domain, text, p, sp, adkim if adkim in ("r", "s") else "r",
                       aspf if aspf in ("r", "s") else "r", pct)


def find_record(resolver: Resolver, psl: PublicSuffixList, from_domain: str,
                log: LookupLog | None = None) -> DMARCRecord | None:
    """§6.6.3: ``_dmarc.<From domain>``, then ``_dmarc.<organisational domain>``; several records count as none."""
    candidates = [from_domain]
    org = org_domain(psl, from_domain)
    if org != from_domain:
        candidates.append(org)
    for domain in candidates:
        texts = [t.decode("utf-8", "replace") for t in resolver.txt(f"_dmarc.{domain}", log=log)]
        records = [r for r in (parse_record(domain, t) for t in texts) if r is not None]
        if len(records) == 1:
            return records[0]
        if len(records) > 1:
            return None
    return None


@dataclass(frozen=True)
class DMARCResult:
    result: str  # pass, fail, none, temperror, permerror (RFC 8601 §2.7.5 via RFC 7489 §11.2)
    from_domain: str
    policy: str  # the policy that applies to this From domain ("" without a record)
    disposition: str  # what to do: none, quarantine, reject (after pct sampling; "none" unless fail)
    reason: str
    record: DMARCRecord | None = None
    spf_aligned: bool = False
    dkim_aligned: str = ""  # the d= of the aligned passing signature


def aligned(psl: PublicSuffixList, a: str, b: str, mode: str) -> bool:
    """§3.1.1/§3.1.2: strict is an exact match, relaxed the same organisational domain."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if not a or not b:
        return False
    return a == b if mode == "s" else org_domain(psl, a) == org_domain(psl, b)


def evaluate(resolver: Resolver, psl: PublicSuffixList, from_domains: Sequence[str], spf: SPFResult | None,
             dkim: Sequence[DKIMResult], log: LookupLog | None = None,
             sample: Callable[[], float] = random.random) -> DMARCResult:
    """The DMARC result for a message with these From domains and SPF (MAIL FROM, or HELO for a null sender) and
    DKIM results. Never raises (see the module docstring)."""
    try:
        return _evaluate(resolver, psl, from_domains, spf, dkim, log, sample)
    except TempDNSError as e:
        return DMARCResult("temperror", ",".join(from_domains), "", "none", str(e))
    except Exception as e:
        return DMARCResult("permerror", ",".join(from_domains), "", "none",
                           f"cannot evaluate: {type(e).__name__}: {e}")


def _evaluate(resolver: Resolver, psl: PublicSuffixList, from_domains: Sequence[str], spf: SPFResult | None,
              dkim: Sequence[DKIMResult], log: LookupLog | None, sample: Callable[[], float]) -> DMARCResult:
    if len(from_domains) != 1:
        why = "no From domain" if not from_domains else "several From domains"
        return DMARCResult("permerror", ",".join(from_domains), "", "none", why)  # §6.6.1
    domain = from_domains[0]
    try:
        record = find_record(resolver, psl, domain, log)
    except TempDNSError as e:
        return DMARCResult("temperror", domain, "", "none", str(e))
    if record is None:
        return DMARCResult("none", domain, "", "none", f"{domain} publishes no DMARC record")
    policy = record.p if record.domain == domain else record.sp
    spf_ok = spf is not None and spf.result == "pass" and aligned(psl, spf.domain, domain, record.aspf)
    dkim_ok = next((r.domain for r in dkim if r.result == "pass" and aligned(psl, r.domain, domain, record.adkim)),
                   "")
    if spf_ok or dkim_ok:
        how = " and ".join(x for x in (f"SPF ({spf.domain})" if spf_ok and spf else "",
                                       f"DKIM ({dkim_ok})" if dkim_ok else "") if x)
        return DMARCResult("pass", domain, policy, "none", f"aligned {how}", record, spf_ok, dkim_ok)
    temp = (spf is not None and spf.result == "temperror") or any(r.result == "temperror" for r in dkim)
    if temp:
        return DMARCResult("temperror", domain, policy, "none",
                           "no aligned pass, and an SPF or DKIM check could not be completed", record)
    disposition = policy
    if record.pct < 100 and sample() * 100 >= record.pct:  # §6.6.4: outside the sample, one step softer
        disposition = {"reject": "quarantine", "quarantine": "none"}.get(policy, "none")
    parts = []
    if spf is None:
        parts.append("no SPF check")
    elif spf.result == "pass":
        parts.append(f"SPF passed for {spf.domain}, not aligned with {domain}")
    else:
        parts.append(f"SPF {spf.result}")
    passed = [r.domain for r in dkim if r.result == "pass"]
    parts.append(f"DKIM passed only for {', '.join(passed)}, not aligned" if passed
                 else "no valid DKIM signature" if dkim else "no DKIM signature")
    return DMARCResult("fail", domain, policy, disposition, "; ".join(parts), record)
