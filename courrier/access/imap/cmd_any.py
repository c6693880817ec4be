"""Commands valid in any state (RFC 3501 §6.1) and the small extensions: ID (RFC 2971), ENABLE (RFC 5161),
NAMESPACE (RFC 2342)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from courrier import __version__
from courrier.access.imap import condstore, extensions
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


# RFC 2971 §3.3: at most 30 field-value pairs, fields of at most 30 octets, values of at most 1024
ID_MAX_PAIRS, ID_MAX_FIELD, ID_MAX_VALUE = 30, 30, 1024


def _id_params(tok: Token) -> None:
    """RFC 2971 §4 id-params-list: NIL or ``(field value …)``, fields strings, values strings or NIL, within §3.3's
    limits; anything else is BAD, so a client cannot make us hold more than a few KiB of its identity."""
    if isinstance(tok, Atom) and tok.upper() == "NIL":
        return
    if not isinstance(tok, list) or len(tok) % 2 or len(tok) > 2 * ID_MAX_PAIRS:
        raise ParseError(f"ID takes NIL or a list of at most {ID_MAX_PAIRS} field-value pairs")
    for field, value in zip(tok[::2], tok[1::2], strict=True):
        if not isinstance(field, bytes) or len(field) > ID_MAX_FIELD:
            raise ParseError(f"ID field must be a string of at most {ID_MAX_FIELD} octets")
        nil = isinstance(value, Atom) and value.upper() == "NIL"
        if not nil and (not isinstance(value, bytes) or len(value) > ID_MAX_VALUE):
            raise ParseError(f"ID value must be NIL or a string of at most {ID_MAX_VALUE} octets")


async def id_(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 2971 §3.1: the client's parameters are checked and dropped (not logged: they may identify people)."""
    if len(args) != 1:
        raise ParseError("usage: ID (params) or ID NIL")
    _id_params(args[0])
    s.send(f'* ID ("name" "courrier" "version" "{__version__}")')
    return "ID completed"


async def enable(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 5161 §3.1: the ENABLED list names what this command turned on (CONDSTORE, QRESYNC: RFC 7162 §3.1, §3.2.3)."""
    if not args or not all(isinstance(a, Atom) for a in args):
        raise ParseError("usage: ENABLE capability...")
    names = [str(a) for a in args]
    on = condstore.enable(s, names) + extensions.enable(s, names)  # UTF8=ACCEPT, IMAP4rev2 (extensions.py)
    s.send(" ".join(["* ENABLED", *on]))
    return "ENABLE completed"


async def namespace(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 2342 §5: one personal namespace, "." as delimiter; no shared or other users' namespaces."""
    s.send('* NAMESPACE (("" ".")) NIL NIL')
    return "NAMESPACE completed"
