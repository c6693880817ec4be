"""Commands valid in any state (RFC 3501 §6.1) and the small extensions: ID (RFC 2971), ENABLE (RFC 5161),
NAMESPACE (RFC 2342)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from courrier import __version__
from courrier.access.imap.parser import Atom, ParseError, Token
from courrier.access.imap.state import LOGOUT

if TYPE_CHECKING:
    from courrier.access.imap.session import Session


async def capability(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.1.1."""
    if args:
        raise ParseError("CAPABILITY takes no arguments")
    s.send("* CAPABILITY " + " ".join(s.capabilities()))
    return "CAPABILITY completed"


async def noop(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.1.2: the session loop sends pending mailbox updates after every command."""
    return "NOOP completed"


async def logout(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.1.3: BYE, then the tagged OK, then the connection closes."""
    s.send("* BYE logging out")
    s.deselect()
    s.state = LOGOUT
    return "LOGOUT completed"


async def id_(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 2971 §3.1: the client's parameters are accepted (not logged: they may identify people)."""
    if len(args) != 1 or not (isinstance(args[0], list) or (isinstance(args[0], Atom) and args[0].upper() == "NIL")):
        raise ParseError("usage: ID (params) or ID NIL")
    s.send(f'* ID ("name" "courrier" "version" "{__version__}")')
    return "ID completed"


async def enable(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 5161 §3.1: none of our extensions needs enabling, so the ENABLED list is empty."""
    if not args:
        raise ParseError("usage: ENABLE capability...")
    s.send("* ENABLED")
    return "ENABLE completed"


async def namespace(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 2342 §5: one personal namespace, "." as delimiter; no shared or other users' namespaces."""
    s.send('* NAMESPACE (("" ".")) NIL NIL')
    return "NAMESPACE completed"
