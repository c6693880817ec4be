"""Mail-loop detection (RFC 5321 §6.3): one hop limit and one way of counting hops, for every role and the queue."""

from __future__ import annotations

MAX_HOPS = 50  # a loop is assumed past this many Received: lines (Postfix's hopcount_limit)


def count_received(message: bytes) -> int:
    """Number of Received: fields in the header section of ``message`` (CRLF; the body is not looked at)."""
    end = message.find(b"\r\n\r\n")
    head = message[:end] if end >= 0 else message
    return sum(1 for line in head.split(b"\r\n") if line[:9].lower() == b"received:")
