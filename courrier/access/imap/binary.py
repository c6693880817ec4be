"""BINARY (RFC 3516): FETCH BINARY[part]<partial>, BINARY.PEEK[…] and BINARY.SIZE[…] with the part's
Content-Transfer-Encoding undone, and literal8 (``~{n}``) for what holds NUL.

fetch.py parses the items into its ``Item`` (name ``SECTION``, spec ``BINARY``/``BINARY.PEEK``/``BINARY.SIZE``, so
\\Seen follows BODY's rule: RFC 3516 §4.1 BINARY sets it, .PEEK and .SIZE do not) and hands the rendering here.
"""

from __future__ import annotations

import binascii
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courrier.access.imap.fetch import Item, Message

SPECS = frozenset({"BINARY", "BINARY.PEEK", "BINARY.SIZE"})
CAPABILITY = "BINARY"
_IDENTITY = frozenset({b"", b"7bit", b"8bit", b"binary"})  # RFC 2045 §6.1: no transformation


class UnknownCTE(Exception):
    """RFC 3516 §4.2: a Content-Transfer-Encoding the server cannot decode: the command answers NO [UNKNOWN-CTE]."""


def decoded(m: Message, part: tuple[int, ...]) -> bytes | None:
    """RFC 3516 §4.2: the part's content with its transfer encoding removed; ``[]`` is the whole message as stored.
    None: no such part (answered NIL)."""
    from courrier.access.imap.fetch import resolve  # fetch.py imports this module

    if not part:
        return m.data
    p = resolve(m.tree, part)
    if p is None:
        return None
    cte = (p.get("content-transfer-encoding") or b"").strip().lower()
    if p.is_multipart or p.message is not None:
        if cte not in _IDENTITY:  # RFC 2045 §6.4: composite types are never encoded
            raise UnknownCTE(cte.decode("latin-1"))
        return p.body
    body = p.body
    if cte in _IDENTITY:
        return body
    if cte == b"base64":
        clean = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
        clean = clean[:len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean + b"=" * (-len(clean) % 4)
        try:
            return binascii.a2b_base64(clean)
        except binascii.Error:
            raise UnknownCTE("base64 (corrupt)") from None
    if cte == b"quoted-printable":
        return binascii.a2b_qp(body)
    raise UnknownCTE(cte.decode("latin-1"))


def literal(data: bytes) -> bytes:
    """RFC 3516 §4.2: literal8 (``~{n}``) when the octets hold NUL, which no IMAP4rev1 literal may carry; a plain
    literal otherwise, so clients that never asked for binary data read it as usual."""
    return (b"~{%d}\r\n" if b"\x00" in data else b"{%d}\r\n") % len(data) + data


def render(m: Message, it: Item) -> bytes:
    """The FETCH data item: ``BINARY[1]<0> ~{n}…``, ``BINARY.SIZE[1] n`` (RFC 3516 §4.2)."""
    data = decoded(m, it.part)
    if it.spec == "BINARY.SIZE":
        return it.label + b" %d" % (0 if data is None else len(data))
    if data is None:
        return it.label + b" NIL"
    if it.partial is not None:
        start, length = it.partial
        data = data[start:] if length is None else data[start:start + length]
    return it.label + b" " + literal(data)

