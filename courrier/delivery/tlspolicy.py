"""Outbound TLS policy: the rules one delivery attempt to one MX host runs under, and its label in the delivery log.

For each MX host, in this order (DANE first: RFC 8461 §2 leaves a host with DANE to DANE):

1. ``dane`` (RFC 7672, ``[delivery] dane``): the TLSA records at ``_PORT._tcp.HOST`` came with the AD bit from the
   configured resolver. TLS is then mandatory (no STARTTLS or a failed handshake defers, never plain text, §2.2) and
   the certificate must match a usable record (:mod:`courrier.delivery.dane`); with no usable record, TLS is still
   mandatory but unauthenticated (§2.2). A TLSA lookup that fails for a host whose address records are signed
   defers too (§2.1.1): a validating resolver answers SERVFAIL for a forged record. Answers without AD are ignored.
2. ``mta-sts-enforce`` / ``mta-sts-testing`` (RFC 8461, ``[delivery] mta_sts``): the domain's policy (below).
   Enforce: only MX hosts the policy lists (§4.1), only over TLS with a certificate valid for the MX name from a
   trusted CA — system CAs plus ``[delivery] tls_ca_file`` (§4.2); otherwise that host is skipped with a 4.7.x
   reply, so a message no host may take stays queued (temporary failure) until ``max_lifetime``. Testing: delivered
   as without a policy, and what enforce would have refused is logged (``delivery.mta_sts_testing``).
3. ``opportunistic``: STARTTLS when offered, certificate not checked (RFC 3207; the public MX network's default).

The MTA-STS policy of a domain (§5.1): the ``_mta-sts`` TXT id is looked up on each delivery; a cached policy is
used while its max_age lasts and the id is unchanged (or the TXT record is gone or the lookup failed); a new id or
an expired policy is fetched again over HTTPS. Policies live in SQLite (``mta_sts_policy``), so they survive a
restart (in a cluster, in PostgreSQL: ``courrier/cluster/policies.py``, a policy one node fetched holds for all); a failed fetch falls back on the cached policy, or on none, and is not retried for five minutes.
Not done: TLS-RPT reports (RFC 8460), proactive refresh (§10.2), DNSSEC of the MX RRset itself (RFC 7672 §2.2.1).
"""

from __future__ import annotations

import asyncio
import sqlite3
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from courrier import db, log
from courrier.delivery import dane, mtasts
from courrier.delivery import replies as R
from courrier.dns import DNSError, NXDomain, Resolver
from courrier.mail.reply import Reply

DANE, ENFORCE, TESTING, OPPORTUNISTIC = "dane", "mta-sts-enforce", "mta-sts-testing", "opportunistic"
FETCH_RETRY = 300.0  # seconds before a failed policy fetch is tried again
MEMORY = 10000  # policies kept in memory (the database keeps them all)


@dataclass(frozen=True)
class HostPolicy:
    """What an attempt to one MX host must do. ``verify``: "none", "pkix" (MTA-STS) or "dane"."""

    label: str = OPPORTUNISTIC
    require_tls: bool = False
    verify: str = "none"
    tlsa: tuple[dane.TLSA, ...] = ()
    refused: Reply | None = None  # the host may not be used at all
    qid: str = ""
    domain: str = ""

    def grade(self, host: str) -> str:
        """Connections are reused only under the same policy for the same host name."""
        return "" if self.label == OPPORTUNISTIC else f"{self.label} {self.verify} {host}"


OPPORTUNISTIC_HOST = HostPolicy()


@dataclass(frozen=True)
class CachedPolicy:
    id: str
    policy: mtasts.Policy
    expires: float


class PolicyStore(Protocol):
    """Where fetched policies are kept (blocking, called through a thread); errors are OSError or sqlite3.Error."""

    def get(self, domain: str) -> CachedPolicy | None: ...

    def put(self, domain: str, ident: str, text: str, fetched: float, expires: float) -> None: ...


class PolicyCache:
    """The ``mta_sts_policy`` table; blocking (called through a thread), one connection per thread."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._local = threading.local()

    def _c(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = db.connect(self._path, check_same_thread=False)
        return c

    def get(self, domain: str) -> CachedPolicy | None:
        r = self._c().execute("SELECT id, policy, expires FROM mta_sts_policy WHERE domain=?", (domain,)).fetchone()
        if r is None:
            return None
        try:
            return CachedPolicy(r["id"], mtasts.parse_policy(r["policy"]), r["expires"])
        except mtasts.PolicyError:
            return None

    def put(self, domain: str, ident: str, text: str, fetched: float, expires: float) -> None:
        self._c().execute("INSERT OR REPLACE INTO mta_sts_policy (domain, id, policy, fetched, expires) "
                          "VALUES (?,?,?,?,?)", (domain, ident, text, fetched, expires))


class TLSPolicy:
    def __init__(self, *, resolver: Resolver, db_path: Path | None, mta_sts: bool = True, dane: bool = True,
                 policy_port: int = 443, ca_file: Path | None = None, fetch_timeout: float = 20.0) -> None:
        self.resolver = resolver
        self.mta_sts = mta_sts and db_path is not None
        self.dane = dane
        self.policy_port = policy_port
        self.fetch_timeout = fetch_timeout
        self.verify_context = ssl.create_default_context()  # PKIX: trusted chain, name of the host, dates
        if ca_file is not None:
            self.verify_context.load_verify_locations(cafile=str(ca_file))
        self.cache: PolicyStore | None = PolicyCache(db_path) if db_path is not None else None
        self._memory: dict[str, CachedPolicy | None] = {}
        self._retry_at: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Future[CachedPolicy | None]] = {}

    # ------------------------------------------------------------------ MTA-STS, per domain

    async def domain_policy(self, domain: str) -> mtasts.Policy | None:
        """The MTA-STS policy to apply to ``domain`` now (RFC 8461 §5.1), or None."""
        if not self.mta_sts or self.cache is None:
            return None
        domain = domain.rstrip(".").lower()
        now = time.time()
        cached = await self._cached(domain)
        valid = cached if cached is not None and cached.expires > now else None
        try:
            ident = mtasts.record_id(await self.resolver.txt(f"_mta-sts.{domain}"))
        except DNSError:
            ident = None  # no record or no answer: a cached policy still holds (§5.1)
        if ident is None or (valid is not None and valid.id == ident):
            return valid.policy if valid else None
        if self._retry_at.get(domain, 0) > now:
            return valid.policy if valid else None
        pending = self._fetching.get(domain)
        if pending is None:
            pending = self._fetching[domain] = asyncio.ensure_future(self._fetch(domain, ident))
            pending.add_done_callback(lambda _: self._fetching.pop(domain, None))
        fresh = await asyncio.shield(pending)
        if fresh is not None:
            return fresh.policy
        return valid.policy if valid else None

    async def _cached(self, domain: str) -> CachedPolicy | None:
        if domain not in self._memory:
            assert self.cache is not None
            if len(self._memory) >= MEMORY:
                self._memory.clear()
            try:
                self._memory[domain] = await asyncio.to_thread(self.cache.get, domain)
            except (sqlite3.Error, OSError) as e:  # not remembered: asked again next time
                log.event("mta_sts.cache_failed", level="error", domain=domain, error=str(e))
                return None
        return self._memory[domain]

    async def _fetch(self, domain: str, ident: str) -> CachedPolicy | None:
        try:
            text, policy = await mtasts.fetch_policy(domain, resolver=self.resolver, context=self.verify_context,
                                                     port=self.policy_port, timeout=self.fetch_timeout)
        except mtasts.PolicyError as e:
            self._retry_at[domain] = time.time() + FETCH_RETRY
            log.event("mta_sts.fetch_failed", level="warn", domain=domain, id=ident, error=str(e))
            return None
        now = time.time()
        fresh = CachedPolicy(ident, policy, now + policy.max_age)
        assert self.cache is not None
        try:
            await asyncio.to_thread(self.cache.put, domain, ident, text, now, fresh.expires)
        except (sqlite3.Error, OSError) as e:  # the policy still applies; only its persistence is lost
            log.event("mta_sts.cache_failed", level="error", domain=domain, error=str(e))
        self._memory[domain] = fresh
        self._retry_at.pop(domain, None)
        log.event("mta_sts.policy", domain=domain, id=ident, mode=policy.mode, max_age=policy.max_age,
                  mx=",".join(policy.mx))
        return fresh

    # ------------------------------------------------------------------ per MX host

    async def host_policy(self, qid: str, domain: str, host: str, port: int,
                          sts: mtasts.Policy | None) -> HostPolicy:
        if self.dane:
            found = await self._dane(qid, domain, host, port)
            if found is not None:
                return found
        if sts is None or sts.mode == "none":
            return OPPORTUNISTIC_HOST
        if sts.mode == "enforce":
            if not sts.matches(host):
                return HostPolicy(ENFORCE, refused=R.STS_MX_NOT_LISTED.filled(domain=domain, host=host), qid=qid,
                                  domain=domain)
            return HostPolicy(ENFORCE, require_tls=True, verify="pkix", qid=qid, domain=domain)
        hp = HostPolicy(TESTING, verify="pkix", qid=qid, domain=domain)
        if not sts.matches(host):
            self.report(hp, host, "MX host not listed in the policy")
        return hp

    async def _dane(self, qid: str, domain: str, host: str, port: int) -> HostPolicy | None:
        name = f"_{port}._tcp.{host}"
        try:
            rrs, secure = await self.resolver.secure(name, "TLSA")
        except NXDomain:
            return None
        except DNSError as e:
            try:
                signed = (await self.resolver.secure(host, "A"))[1]
            except DNSError:
                signed = False
            if not signed:
                return None
            return HostPolicy(DANE, refused=R.DANE_LOOKUP_FAILED.filled(name=name, error=e), qid=qid, domain=domain)
        if not secure or not rrs:
            return None  # RFC 7672 §2.2: only validated TLSA records count
        records = tuple(dane.TLSA(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert))  # type: ignore[attr-defined]
                        for r in rrs)
        usable = tuple(dane.usable(records))
        return HostPolicy(DANE, require_tls=True, verify="dane" if usable else "none", tlsa=usable, qid=qid,
                          domain=domain)

    # ------------------------------------------------------------------ after the handshake

    @staticmethod
    def check(hp: HostPolicy, ssl_object: object, host: str) -> str | None:
        """None when the TLS session satisfies ``hp`` (PKIX was checked by the handshake itself); else why not."""
        if hp.verify != "dane":
            return None
        if ssl_object is None:
            return "no TLS session"
        return dane.verify(dane.peer_chain(ssl_object), hp.tlsa, host)

    @staticmethod
    def report(hp: HostPolicy, host: str, reason: str) -> None:
        """MTA-STS testing mode (RFC 8461 §5): say what enforce would have refused, and go on."""
        log.event("delivery.mta_sts_testing", level="warn", qid=hp.qid, domain=hp.domain, host=host,
                  would_refuse=reason)
