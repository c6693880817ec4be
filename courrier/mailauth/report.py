"""One message, every check: SPF (HELO and MAIL FROM), each DKIM signature, DMARC — and a verdict a person can read.

``Authenticator.check`` is the blocking core (pyspf, dkimpy, DNS); ``Authenticator.check_async`` runs it in a worker
thread with an overall deadline, so the event loop never waits on DNS and a stalled lookup ends as *temperror*. The
MX role and ``courrier check`` both use this class; neither the SMTP server nor the CLI is imported here.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from publicsuffixlist import PublicSuffixList

from courrier.mailauth import dkim as dkim_mod
from courrier.mailauth import dmarc as dmarc_mod
from courrier.mailauth import message as msg_mod
from courrier.mailauth import results
from courrier.mailauth._dns import Lookup, LookupLog, Resolver
from courrier.mailauth.dkim import DKIMResult
from courrier.mailauth.dmarc import DMARCResult
from courrier.mailauth.spf import SPFResult, check_helo, check_spf

CHECK_TIMEOUT = 45.0  # the whole check; SPF alone may take 20 s (RFC 7208 §4.6.4)

# CONTRACT exit codes of `courrier check`
AUTHENTIC, FORGED, UNVERIFIABLE = "authentic", "forged", "unverifiable"


@dataclass(frozen=True)
class Identities:
    """Who the message claims to be from, at each layer (the seed's point: they may all differ)."""

    client_ip: str | None
    helo: str | None
    mail_from: str | None  # envelope sender ("" for the null sender <>)
    header_from: tuple[str, ...]
    sender: tuple[str, ...]
    return_path: tuple[str, ...]


@dataclass
class AuthReport:
    identities: Identities
    spf_helo: SPFResult | None
    spf: SPFResult | None  # the MAIL FROM identity (the HELO one for a null sender), as DMARC uses it
    dkim: list[DKIMResult]
    dmarc: DMARCResult
    lookups: list[Lookup] = field(default_factory=list)
    foreign_authres: list[int] = field(default_factory=list)  # indexes of header fields claiming our authserv-id

    @property
    def verdict(self) -> str:
        """CONTRACT: authentic (DMARC pass), forged (DMARC fail), unverifiable (none, temperror, permerror)."""
        return {"pass": AUTHENTIC, "fail": FORGED}.get(self.dmarc.result, UNVERIFIABLE)

    @property
    def envelope_vs_from(self) -> str:
        """The seed's first clue: does the header From domain match the envelope sender's?"""
        ids = self.identities
        env = msg_mod.domain_of(ids.mail_from or "")
        heads = sorted({msg_mod.domain_of(a) for a in ids.header_from} - {""})
        if not env or not heads:
            return "cannot compare (" + ("no envelope sender" if not env else "no header From") + ")"
        if heads == [env]:
            return f"same domain ({env})"
        return f"different domains: header From {', '.join(heads)}, envelope {env}"

    @property
    def why(self) -> str:
        d = self.dmarc
        if d.result == "pass":
            return f"the From domain {d.from_domain} is vouched for by {d.reason.removeprefix('aligned ')}"
        if d.result == "fail":
            return (f"the From domain {d.from_domain} is not vouched for ({d.reason}); its DMARC policy is "
                    f"p={d.policy}")
        return d.reason

    def action(self, dmarc_reject: bool) -> str:
        """What the MX role does (RFC 7489 §6.3, §10.3): "reject" (p=reject failures, when ``dmarc_reject``),
        "junk" (p=quarantine failures, and p=reject ones we do not refuse), or "deliver" (monitor only)."""
        disposition = self.dmarc.disposition if self.dmarc.result == "fail" else "none"
        if disposition == "reject":
            return "reject" if dmarc_reject else "junk"
        return "junk" if disposition == "quarantine" else "deliver"

    def header(self, authserv_id: str, linesep: str = "\n") -> str:
        return results.authentication_results(authserv_id, self.spf, self.dkim, self.dmarc, linesep)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("foreign_authres", None)
        out["envelope_vs_from"] = self.envelope_vs_from
        out["verdict"] = self.verdict
        out["why"] = self.why
        if self.dmarc.record is not None:
            out["dmarc"]["record"] = asdict(self.dmarc.record)
        return out


class Authenticator:
    """Checks messages against the DNS of ``resolver``; ``hostname`` is our authserv-id and SPF ``%{r}``."""

    def __init__(self, resolver: Resolver, hostname: str, psl: PublicSuffixList | None = None,
                 max_concurrent: int = 8, timeout: float = CHECK_TIMEOUT) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self.psl = psl or PublicSuffixList()
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self._async_slots: asyncio.Semaphore | None = None

    def forged_authres(self, head: bytes) -> list[int]:
        """Indexes of the header fields that are Authentication-Results claiming our authserv-id (RFC 8601 §5)."""
        return [i for i, (name, value) in enumerate(msg_mod.fields(head))
                if name == "authentication-results" and results.claims_authserv_id(msg_mod.unfold(value), self.hostname)]

    def check(self, message: bytes, *, client_ip: str | None, helo: str | None,
              mail_from: str | None) -> AuthReport:
        """Blocking. ``mail_from`` None: unknown (the Return-Path header is used); "" is the null sender."""
        log = LookupLog()
        head, _ = msg_mod.split_head(message)
        return_path = tuple(msg_mod.addresses(head, "return-path"))
        if mail_from is None and return_path:
            mail_from = return_path[0]
        ids = Identities(client_ip, helo, mail_from, tuple(msg_mod.addresses(head, "from")),
                         tuple(msg_mod.addresses(head, "sender")), return_path)
        spf_helo = spf = None
        if client_ip:
            spf_helo = check_helo(self.resolver, client_ip, helo or "", receiver=self.hostname, log=log)
            if mail_from:
                spf = check_spf(self.resolver, client_ip, mail_from, helo or "", receiver=self.hostname, log=log)
            else:
                spf = spf_helo  # RFC 7208 §2.4: a null sender is checked as postmaster@HELO
        dkim = dkim_mod.verify(message, self.resolver, log)
        dmarc = dmarc_mod.evaluate(self.resolver, self.psl, msg_mod.from_domains(head), spf, dkim, log)
        return AuthReport(ids, spf_helo, spf, dkim, dmarc, list(log.entries), self.forged_authres(head))

    async def check_async(self, message: bytes, *, client_ip: str | None, helo: str | None,
                          mail_from: str | None) -> AuthReport:
        """``check`` in a worker thread, bounded in time and in concurrency; past the deadline, DMARC temperror."""
        if self._async_slots is None:
            self._async_slots = asyncio.Semaphore(self.max_concurrent)
        async with self._async_slots:
            task = asyncio.to_thread(self.check, message, client_ip=client_ip, helo=helo, mail_from=mail_from)
            try:
                return await asyncio.wait_for(task, self.timeout)
            except TimeoutError:
                head, _ = msg_mod.split_head(message)
                domains = msg_mod.from_domains(head)
                ids = Identities(client_ip, helo, mail_from, tuple(msg_mod.addresses(head, "from")), (), ())
                why = f"checks did not finish within {self.timeout:g} s"
                spf = SPFResult("temperror", "mailfrom", msg_mod.domain_of(mail_from or ""), mail_from or "",
                                client_ip or "", why)
                d = DMARCResult("temperror", ",".join(domains), "", "none", why)
                return AuthReport(ids, None, spf, [], d, [], self.forged_authres(head))
