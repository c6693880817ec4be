"""The chain: first refusal wins, verdicts merge, and a filter that fails or hangs costs filtering, never mail."""

from __future__ import annotations

import asyncio
import time

import pytest

from courrier import log
from courrier.config import from_mapping
from courrier.filter import chain as filter_chain
from courrier.filter.api import ACCEPT, Action, ClientFilter, MessageFilter, Verdict
from courrier.filter.chain import FilterChain
from courrier.filter.dnsbl import DNSBLFilter
from courrier.filter.spamd import SpamdFilter
from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from tests.filter.helpers import HOP, envelope, message


class Fixed(MessageFilter):
    """A content filter with a set answer (or a set way of failing): the interface's simplest implementation."""

    def __init__(self, name: str, verdict: Verdict | None = None, *, fail: BaseException | None = None,
                 hang: bool = False) -> None:
        self.name, self.verdict, self.fail, self.hang = name, verdict or ACCEPT, fail, hang
        self.calls = 0

    async def check(self, envelope: Envelope, hop: Hop, message: ReceivedMessage) -> Verdict:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail is not None:
            raise self.fail
        return self.verdict


class Listed(ClientFilter):
    name = "listed"

    async def check_client(self, hop: Hop) -> Verdict:
        return Verdict(Action.REJECT, reply=Reply(554, "5.7.1", f"{hop.client_ip} listed"))


@pytest.fixture
def events() -> list[tuple[str, dict]]:
    seen: list[tuple[str, dict]] = []
    remove = log.observe(lambda event, level, fields: seen.append((event, fields)))
    yield seen
    remove()


async def test_headers_merge_in_order_and_junk_wins() -> None:
    a = Fixed("a", Verdict(headers=(("X-A", "1"),), drop_fields=(3,)))
    b = Fixed("b", Verdict(Action.JUNK, (("X-B", "2"),), drop_fields=(1, 3)))
    v = await FilterChain([a, b]).check(envelope(), HOP, message("x"))
    assert v.action is Action.JUNK and v.folder == "Junk"
    assert v.headers == (("X-A", "1"), ("X-B", "2"))
    assert v.drop_fields == (1, 3)


async def test_the_first_refusal_wins_and_later_filters_are_not_asked() -> None:
    refuse = Fixed("r", Verdict(Action.REJECT, reply=Reply(550, "5.7.1", "no")))
    later = Fixed("later")
    v = await FilterChain([Fixed("a", Verdict(Action.JUNK)), refuse, later]).check(envelope(), HOP, message("x"))
    assert v.reply == Reply(550, "5.7.1", "no") and later.calls == 0


async def test_a_failing_filter_means_accepted_unscanned_and_logged(events) -> None:
    chain = FilterChain([Fixed("broken", fail=ConnectionRefusedError("refused")), Fixed("ok", Verdict(Action.JUNK))])
    env = envelope()
    v = await chain.check(env, HOP, message("x"))
    assert v.action is Action.JUNK  # the next filter still ran
    assert ("filter.unavailable", {"filter": "broken", "stage": "message", "qid": env.queue_id,
                                   "error": "refused"}) in events


async def test_a_hanging_filter_is_bounded(events) -> None:
    chain = FilterChain([Fixed("slow", hang=True)], message_budget=0.3)
    started = time.monotonic()
    assert await chain.check(envelope(), HOP, message("x")) == ACCEPT
    assert time.monotonic() - started < 2
    assert any(e == "filter.unavailable" and f["error"] == "TimeoutError" for e, f in events)


async def test_client_stage_refusal() -> None:
    v = await FilterChain([Fixed("content"), Listed()]).check_client(HOP)
    assert v.reply is not None and v.reply.code == 554 and "192.0.2.7" in v.reply.text
    assert await FilterChain([Fixed("content")]).check_client(HOP) == ACCEPT


def test_from_config_builds_dnsbl_then_spamd() -> None:
    assert filter_chain.from_config(from_mapping({})) is None
    cfg = from_mapping({"filter": {"spamd": "127.0.0.1:783", "reject_score": 12, "dnsbl": ["bl.example"]},
                        "delivery": {"nameservers": ["127.0.0.1:5353"]}})
    chain = filter_chain.from_config(cfg)
    assert chain is not None
    dnsbl, spamd = chain.filters
    assert isinstance(dnsbl, DNSBLFilter) and dnsbl.zones == ("bl.example",)
    assert dnsbl.resolver.nameservers == [("127.0.0.1", 5353)]
    assert isinstance(spamd, SpamdFilter) and spamd.reject_score == 12.0 and spamd.address.port == 783
