"""One message, every check: SPF (HELO and MAIL FROM), each DKIM signature, DMARC — and a verdict a person can read.

``Authenticator.check`` is the blocking core (pyspf, dkimpy, DNS); ``Authenticator.check_async`` runs it in a worker
thread, so the event loop never waits on DNS. The MX role and ``courrier check`` both use this class; neither the SMTP
server nor the CLI is imported here.

Time budget (``[auth] check_timeout``, default 5 s): one deadline for SPF, DKIM and DMARC together. Every DNS
question gets only the time left (see ``_dns.LookupLog``), so against a silent nameserver the check itself ends at the
deadline: what finished keeps its result, what did not is *temperror*, and the message is judged on. The report
names the question the budget cut short (``AuthReport.hung``) for the one ``auth.timeout`` log line. A hard stop a
little after the deadline covers anything else that overruns (CPU): then every check is *temperror*.

Threads: checks run on a pool of ``max_concurrent`` workers of their own (not the loop's default executor), so a
flood of slow checks can occupy at most that many threads; a check still waiting for a worker when its deadline
passes is cancelled before it starts.

Never raises on hostile input: SPF, DKIM and DMARC each map their libraries' exceptions to a result (see spf.py,
dkim.py, dmarc.py); an unexpected failure of the whole check is *temperror* for every method.
"""

from __future__ import annotations

import asyncio
import functools
import time
from concurrent.futures import ThreadPoolExecutor
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

CHECK_TIMEOUT = 5.0  # the whole check on the MX role ([auth] check_timeout)
STOP_GRACE = 0.25  # seconds past the deadline before a check that overruns it is abandoned

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
    over_budget: bool = False  # the time budget ran out: what had not finished is temperror
    hung: Lookup | None = None  # the DNS question the budget cut short, when one did

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
        out.pop("over_budget", None)
        out.pop("hung", None)
        out["envelope_vs_from"] = self.envelope_vs_from
        out["verdict"] = self.verdict
        out["why"] = self.why
        if self.dmarc.record is not None:
            out["dmarc"]["record"] = asdict(self.dmarc.record)
        return out


class Authenticator:
    """Checks messages against the DNS of ``resolver``; ``hostname`` is our authserv-id and SPF ``%{r}``.

    ``timeout`` is the budget of ``check_async`` (one message, every method); ``max_concurrent`` bounds its threads.
    """

    def __init__(self, resolver: Resolver, hostname: str, psl: PublicSuffixList | None = None,
                 max_concurrent: int = 8, timeout: float = CHECK_TIMEOUT) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self.psl = psl or PublicSuffixList()
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="courrier-mailauth")

    def forged_authres(self, head: bytes) -> list[int]:
        """Indexes of the header fields that are Authentication-Results claiming our authserv-id (RFC 8601 §5)."""
        return [i for i, (name, value) in enumerate(msg_mod.fields(head))
                if name == "authentication-results" and results.claims_authserv_id(msg_mod.unfold(value), self.hostname)]

    @staticmethod
    def identities(head: bytes, client_ip: str | None, helo: str | None, mail_from: str | None) -> Identities:
        """Who the message claims to be from; ``mail_from`` None: taken from Return-Path."""
        return_path = tuple(msg_mod.addresses(head, "return-path"))
        if mail_from is None and return_path:
            mail_from = return_path[0]
        return Identities(client_ip, helo, mail_from, tuple(msg_mod.addresses(head, "from")),
                          tuple(msg_mod.addresses(head, "sender")), return_path)

    def check(self, message: bytes, *, client_ip: str | None, helo: str | None,
              mail_from: str | None, log: LookupLog | None = None) -> AuthReport:
        """Blocking. ``mail_from`` None: unknown (the Return-Path header is used); "" is the null sender.

        ``log`` may carry a deadline (``LookupLog(deadline=…)``): no DNS question is asked past it."""
        log = log if log is not None else LookupLog()
        head, _ = msg_mod.split_head(message)
        ids = self.identities(head, client_ip, helo, mail_from)
        mail_from = ids.mail_from
        spf_helo = spf = None
        if client_ip:
            spf_helo = check_helo(self.resolver, client_ip, helo or "", receiver=self.hostname, log=log)
            if mail_from:
                spf = check_spf(self.resolver, client_ip, mail_from, helo or "", receiver=self.hostname, log=log)
            else:
                spf = spf_helo  # RFC 7208 §2.4: a null sender is checked as postmaster@HELO
        dkim = dkim_mod.verify(message, self.resolver, log)
        dmarc = dmarc_mod.evaluate(self.resolver, self.psl, msg_mod.from_domains(head), spf, dkim, log)
        return AuthReport(ids, spf_helo, spf, dkim, dmarc, list(log.entries), self.forged_authres(head),
                          log.over_budget, log.hung)

    async def check_async(self, message: bytes, *, client_ip: str | None, helo: str | None,
                          mail_from: str | None) -> AuthReport:
        """``check`` on the bounded pool within ``timeout`` (see the module docstring). Never raises."""
        log = LookupLog(deadline=time.monotonic() + self.timeout)
        job = asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(
            self.check, message, client_ip=client_ip, helo=helo, mail_from=mail_from, log=log))
        try:
            return await asyncio.wait_for(job, self.timeout + STOP_GRACE)  # cancels it if it never started
        except TimeoutError:
            why = f"checks did not finish within {self.timeout:g} s"
        except Exception as e:  # a bug on input nobody foresaw: judged on, not a 451
            why = f"checks failed: {type(e).__name__}: {e}"
        return self.unfinished(message, client_ip, helo, mail_from, why, log)

    def unfinished(self, message: bytes, client_ip: str | None, helo: str | None, mail_from: str | None,
                   why: str, log: LookupLog) -> AuthReport:
        """The report of a check that could not finish: temperror for SPF, each DKIM signature and DMARC."""
        head, _ = msg_mod.split_head(message)
        ids = self.identities(head, client_ip, helo, mail_from)
        domains = msg_mod.from_domains(head)
        spf = None
        if client_ip:
            spf = SPFResult("temperror", "mailfrom" if ids.mail_from else "helo",
                            msg_mod.domain_of(ids.mail_from or "") or (helo or ""), ids.mail_from or "",
                            client_ip, why)
        dkim = [DKIMResult("temperror", "", "", "", "", why)
                for name, _ in msg_mod.fields(head) if name == "dkim-signature"][:8]
        d = DMARCResult("temperror", ",".join(domains), "", "none", why)
        return AuthReport(ids, None, spf, dkim, d, list(log.entries), self.forged_authres(head), True, log.hung)

    def close(self) -> None:
        """Lets the pool's threads go once their current check ends (each ends by its deadline)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
