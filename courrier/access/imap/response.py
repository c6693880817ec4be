"""IMAP response syntax (RFC 3501 §7, §9): strings, lists and flags rendered as the grammar asks.

A string is sent quoted when it is short 7-bit text without CR, LF, NUL, ``"`` or ``\\``, as a literal otherwise
(RFC 3501 §4.3: 8-bit data is never quoted in IMAP4rev1).
"""

from __future__ import annotations

from collections.abc import Iterable

_QUOTE_SAFE = frozenset(range(0x20, 0x7F)) - {0x22, 0x5C}


def string(value: bytes | str) -> bytes:
    b = value.encode("utf-8") if isinstance(value, str) else value
    if len(b) < 512 and all(c in _QUOTE_SAFE for c in b):
        return b'"' + b + b'"'
    return b"{%d}\r\n" % len(b) + b


def nstring(value: bytes | str | None) -> bytes:
    return b"NIL" if value is None else string(value)


def astring(value: str) -> bytes:
    """Mailbox names and the like: an atom when it is one, else a string."""
    b = value.encode("utf-8")
    if b and all(c in _QUOTE_SAFE and c not in b"(){ %*]" for c in b):
        return b
    return string(b)


def plist(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def flags(fl: Iterable[str]) -> bytes:
    return plist(f.encode() for f in sorted(fl))
