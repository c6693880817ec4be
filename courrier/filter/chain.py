"""The configured filters, run in order, each bounded in time and none able to refuse mail by failing.

The MX role asks the chain twice per transaction (see ``courrier.filter.api``): about the client before it accepts a
recipient, and about the message at the end of DATA. The first refusal wins; otherwise the verdicts merge — header
fields in filter order, Junk if any filter says junk. Each message verdict is logged (``filter.verdict``); client
verdicts are logged by the filter that looked (once per lookup, not once per recipient). A filter that raises or overruns its budget is logged
(``filter.unavailable``) and counted as "accept": a scanner being down must cost filtering, never mail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from courrier import log
from courrier.config import Config
from courrier.dns import Resolver
from courrier.filter.api import ACCEPT, Action, Filter, Verdict
from courrier.filter.dnsbl import BUDGET as DNSBL_BUDGET
from courrier.filter.dnsbl import DNSBLFilter
from courrier.filter.spamd import SCAN_TIMEOUT, SpamdFilter
from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage

CLIENT_BUDGET = DNSBL_BUDGET + 2.0  # the DNSBL keeps its own budget and logs which zone hung; this is the backstop
MESSAGE_BUDGET = SCAN_TIMEOUT + 10.0


class FilterChain:
    def __init__(self, filters: Sequence[Filter], *, client_budget: float = CLIENT_BUDGET,
                 message_budget: float = MESSAGE_BUDGET) -> None:
        self.filters = tuple(filters)
        self.client_budget, self.message_budget = client_budget, message_budget
        self._early: set[asyncio.Task[Verdict]] = set()

    def start_client_check(self, hop: Hop) -> None:
        """Starts the client check at connect, so that its DNS lookups run during EHLO and MAIL: the answer is
        given at RCPT (``check_client``, which finds it cached — the DNSBL filter shares lookups per address)."""
        task = asyncio.ensure_future(self.check_client(hop))
        self._early.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._early.discard)

    async def check_client(self, hop: Hop) -> Verdict:
        """The first refusal of any filter for this client, or ACCEPT."""
        for f in self.filters:
            v = await self._bounded(f, "client", f.check_client(hop), self.client_budget, ip=hop.client_ip)
            if v.refused:
                return v
        return ACCEPT

    async def check(self, envelope: Envelope, hop: Hop, message: ReceivedMessage) -> Verdict:
        """The first refusal, or the merged verdict of every filter about this message."""
        headers: list[tuple[str, str]] = []
        drop: set[int] = set()
        junk = False
        for f in self.filters:
            v = await self._bounded(f, "message", f.check(envelope, hop, message), self.message_budget,
                                    qid=envelope.queue_id)
            if v.refused:
                return v
            headers += v.headers
            drop.update(v.drop_fields)
            junk = junk or v.action is Action.JUNK
        return Verdict(Action.JUNK if junk else Action.ACCEPT, tuple(headers), drop_fields=tuple(sorted(drop)))

    async def _bounded(self, f: Filter, stage: str, call: Awaitable[Verdict], budget: float, **ids: object) -> Verdict:
        try:
            async with asyncio.timeout(budget):
                v = await call
        except Exception as e:  # TimeoutError included: accept unscanned, say so
            log.event("filter.unavailable", level="warn", filter=f.name, stage=stage, **ids,
                      error=str(e) or type(e).__name__)
            return ACCEPT
        if stage == "message" and (v.action is not Action.ACCEPT or v.note):  # one line per scan or refusal
            log.event("filter.verdict", filter=f.name, stage=stage, **ids, action=str(v.action),
                      note=v.note or None, reply=str(v.reply) if v.reply else None)
        return v


def from_config(cfg: Config) -> FilterChain | None:
    """The chain ``[filter]`` asks for — DNSBL zones first (cheap, and a listed client never gets to DATA), then
    spamd — or None when nothing is configured. DNSBL lookups go through ``[delivery] nameservers``."""
    filters: list[Filter] = []
    if cfg.filter.dnsbl:
        servers = [(ns.host, ns.port) for ns in cfg.delivery.nameservers]
        filters.append(DNSBLFilter(cfg.filter.dnsbl, Resolver(servers, timeout=2.0, lifetime=DNSBL_BUDGET)))
    if cfg.filter.spamd is not None:
        filters.append(SpamdFilter(cfg.filter.spamd, cfg.filter.reject_score))
    return FilterChain(filters) if filters else None
