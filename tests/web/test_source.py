"""Both message sources satisfy ``web.source.MessageSource``: the capture store's adapter and the server-mode
mailbox view have every method of the protocol, with the same parameters, async where the protocol is."""

from __future__ import annotations

import inspect

import pytest

from courrier.accounts import Accounts
from courrier.capture.records import Page
from courrier.capture.store import CaptureStore
from courrier.config import from_mapping
from courrier.mailbox.store import MaildirStore
from courrier.web.mailboxes import MailboxSource
from courrier.web.mailview import MailboxView
from courrier.web.source import MessageSource
from courrier.web.store import CaptureSource

PROTOCOL = {n: f for n, f in vars(MessageSource).items() if inspect.isfunction(f) and not n.startswith("_")}


def test_the_protocol_names_what_the_api_calls():
    assert {"page", "message", "summary", "raw", "headers", "part", "envelope", "set_read", "delete", "add",
            "set_tags", "tag_counts", "db_path"} <= set(PROTOCOL)


@pytest.mark.parametrize("impl", [CaptureSource, MailboxView])
def test_each_source_has_the_protocols_methods(impl):
    for name, proto in PROTOCOL.items():
        got = getattr(impl, name, None)
        assert got is not None, f"{impl.__name__}.{name} missing"
        assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(proto), name
        assert list(inspect.signature(got).parameters) == list(inspect.signature(proto).parameters), name


async def test_both_instances_are_message_sources_and_answer_with_records(tmp_path):
    cfg = from_mapping({"mode": "capture", "data_dir": str(tmp_path)})
    capture = CaptureStore(cfg.data_dir, cfg.capture, db_path=cfg.db_path)
    accounts = Accounts(cfg.db_path)
    accounts.add("bob@example.test", "pw")
    mail = MaildirStore(tmp_path)
    try:
        sources = [CaptureSource(capture), MailboxView(MailboxSource(mail, accounts), None, "bob@example.test")]
        for src in sources:
            assert isinstance(src, MessageSource)
            page = await src.page(None, 0, 50)
            assert isinstance(page, Page) and page.total == 0 and page.messages == []
    finally:
        mail.close()
        capture.close()
