"""The stdlib MIME parser with a bound on nesting and on the number of parts — the one entry point every MIME walker
of capture mode and of the web layer parses through (``parse.parse``, ``parse.parse_bytes``).

Why: ``email.feedparser`` recurses once per nested part (multipart or message/*), with no limit. One 64 KiB message
of 1,000 nested multiparts ends in ``RecursionError``, and a 25 MiB message of empty parts makes millions of
``Message`` objects. The bounds are the defaults of Dovecot's message parser (lib-mail ``message-parser.h``:
``MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS`` 100, ``…MAX_TOTAL_MIME_PARTS`` 10000), far beyond real mail.

How: ``_BoundedFeedParser`` counts its own ``_parsegen`` generators (one per message or part being parsed — the
stdlib's recursion point) and stops with ``MimeLimitError`` past a bound, before Python's stack is at risk.
``parse_bounded`` then falls back to the header section alone, so the caller still has what could be read (subject,
addresses) and a one-line reason to show beside it. No input makes it raise.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy as email_policy
from email.feedparser import FeedParser
from email.message import Message
from email.policy import Policy

MAX_DEPTH = 100  # nested parts (multipart and message/*), counted from the top-level message = 1
MAX_PARTS = 10000  # parts in one message, all levels together


class MimeLimitError(ValueError):
    """A message whose MIME structure is beyond MAX_DEPTH or MAX_PARTS."""


class _BoundedFeedParser(FeedParser):
    """``FeedParser`` whose recursion (``_parsegen`` calls itself for every nested part) is counted and bounded.

    ``_parsegen`` is a non-public method of the stdlib, stable since Python 3.2; tests/capture/test_mimebound.py
    proves the bound still applies (a 1,000-level message raises MimeLimitError, not RecursionError)."""

    def __init__(self, policy: Policy) -> None:
        self._depth = 0
        self._parts = 0
        super().__init__(policy=policy)

    def _parsegen(self) -> Iterator[object]:
        self._depth += 1
        self._parts += 1
        try:
            if self._depth > MAX_DEPTH:
                raise MimeLimitError(f"MIME parts nested deeper than {MAX_DEPTH} levels")
            if self._parts > MAX_PARTS:
                raise MimeLimitError(f"more than {MAX_PARTS} MIME parts")
            yield from super()._parsegen()  # type: ignore[misc]
        finally:
            self._depth -= 1


def message_from_bytes(data: bytes, policy: Policy = email_policy.compat32, *,
                       headersonly: bool = False) -> Message:
    """``email.message_from_bytes`` with the bounds above; raises MimeLimitError past them."""
    p = _BoundedFeedParser(policy)
    if headersonly:
        p._set_headersonly()
    p.feed(data.decode("ascii", "surrogateescape"))  # as BytesParser does: 8-bit octets kept as surrogates
    return p.close()


def parse_bounded(data: bytes, policy: Policy = email_policy.compat32) -> tuple[Message, str]:
    """(message, "") when the whole structure parses; else (its header section alone, the reason in one line).

    Never raises: a capture server keeps and lists whatever it was sent (CONTRACT: "never refuses a message for its
    content")."""
    try:
        return message_from_bytes(data, policy), ""
    except MimeLimitError as e:
        reason = str(e)
    except Exception as e:  # noqa: BLE001 — hostile input must never stop indexing; the reason is shown instead
        reason = f"MIME structure not parsed: {type(e).__name__}: {e}"[:300]
    try:
        return message_from_bytes(data, policy, headersonly=True), reason
    except Exception as e:  # noqa: BLE001
        empty = policy.message_factory() if policy.message_factory is not None else Message()
        return empty, f"{reason}; header section not parsed either: {type(e).__name__}"[:300]
