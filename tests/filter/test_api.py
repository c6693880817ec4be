"""The filter interface's value objects: verdicts, the header block they add, the fields they drop."""

from __future__ import annotations

import pytest

from courrier.delivery.local import without_fields
from courrier.filter.api import ACCEPT, Action, Verdict, field_indices
from courrier.mail.reply import Reply
from tests.filter.helpers import message


def test_a_refusal_needs_its_reply() -> None:
    with pytest.raises(ValueError):
        Verdict(Action.REJECT)
    v = Verdict(Action.TEMPFAIL, reply=Reply(451, "4.7.1", "later"))
    assert v.refused and v.folder is None
    assert not ACCEPT.refused and ACCEPT.folder is None
    assert Verdict(Action.JUNK).folder == "Junk"


def test_header_block_is_lf_terminated_fields_in_order() -> None:
    v = Verdict(headers=(("X-Spam-Score", "1.0"), ("X-Spam-Status", "No, score=1.0\n\ttests=A")))
    assert v.header_block() == b"X-Spam-Score: 1.0\nX-Spam-Status: No, score=1.0\n\ttests=A\n"


def test_field_indices_count_fields_as_delivery_drops_them() -> None:
    """The numbers found here are the fields ``without_fields`` leaves out: the two must count alike, folded
    fields and all."""
    msg = message("body", headers="X-Spam-Flag: NO\r\nX-Other: a\r\n b\r\nx-spam-STATUS : No,\r\n\tscore=-5\r\n")
    head = msg.read_all()
    found = field_indices(head, frozenset({"x-spam-flag", "x-spam-status"}))
    assert found == (5, 7)
    kept = b"".join(without_fields(msg, frozenset(found)))
    assert b"X-Spam" not in kept and b"x-spam" not in kept
    assert b"X-Other: a\r\n b\r\n" in kept and kept.endswith(b"\r\nbody\r\n")


def test_field_indices_without_a_complete_header_section_finds_nothing() -> None:
    assert field_indices(b"X-Spam-Flag: YES\r\nno end", frozenset({"x-spam-flag"})) == ()
    assert field_indices(b"", frozenset({"x-spam-flag"})) == ()
