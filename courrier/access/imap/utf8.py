"""UTF8=ACCEPT (RFC 6855) and IMAP4rev2's UTF-8 mailbox names (RFC 9051 §5.1): once the client has enabled either,
mailbox names travel as raw UTF-8 both ways (RFC 6855 §3: no modified UTF-7, ``&`` is just ``&``), and APPEND takes
``UTF8 (~{n})`` (RFC 6855 §4).

The store keeps names in modified UTF-7 as before (mailbox/names.py), so the translation happens here, at the
protocol's edge: names read from a command go through :func:`mailbox`, names written in a response through
:func:`show`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courrier.access.imap import response as W
from courrier.access.imap.parser import ParseError, Token, astring
from courrier.mailbox import names

if TYPE_CHECKING:
    from courrier.access.imap.session import Session

CAPABILITY = "UTF8=ACCEPT"


def on(s: Session) -> bool:
    """Mailbox names in UTF-8 (RFC 6855 §3 after ENABLE UTF8=ACCEPT; RFC 9051 §5.1 after ENABLE IMAP4rev2)."""
    return bool(s.enabled & {"UTF8=ACCEPT", "IMAP4rev2"})


def mailbox(s: Session, tok: Token, what: str = "mailbox") -> str:
    """A mailbox name (or LIST reference/pattern) from a command, as the store names it."""
    name = astring(tok, what)
    return names.encode_mutf7(name) if on(s) else name


def text(s: Session, name: str) -> str:
    if on(s):
        try:
            return names.decode_mutf7(name)
        except names.FolderError:
            return name
    return name


def show(s: Session, name: str) -> bytes:
    """A stored mailbox name as the response writes it."""
    return W.astring(text(s, name))


def append_args(s: Session, args: list[Token]) -> list[Token]:
    """RFC 6855 §4 ``APPEND mailbox [flags] [date] UTF8 (literal8)``: the message taken out of its list; BAD unless
    UTF8=ACCEPT (or IMAP4rev2) is on."""
    if len(args) >= 3 and isinstance(args[-1], list) and isinstance(args[-2], str) and args[-2].upper() == "UTF8":
        if not on(s) or len(args[-1]) != 1 or not isinstance(args[-1][0], bytes):
            raise ParseError("usage: APPEND mailbox [flags] [date-time] UTF8 (~{size}) once UTF8=ACCEPT is enabled")
        return [*args[:-2], args[-1][0]]
    return args
