"""LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with SPECIAL-USE attributes (RFC 6154) and CHILDREN (RFC 3348).

LIST also takes the extended form of RFC 5258 §3 (LIST-EXTENDED) that SPECIAL-USE (RFC 6154 §3) and LIST-STATUS
(RFC 5819) ride on: ``LIST [(selection)] reference (pattern …) [RETURN (options)]``, with the selection options
SPECIAL-USE, SUBSCRIBED, RECURSIVEMATCH (CHILDINFO, §3.5) and REMOTE (no remote mailboxes here) and the return
options SPECIAL-USE, SUBSCRIBED, CHILDREN (always given) and STATUS (items).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from courrier.access.imap import utf8 as U
from courrier.access.imap.cmd_mailbox import mailbox_path, status_items, status_line
from courrier.access.imap.parser import Atom, ParseError, Token, astring
from courrier.access.imap.pattern import Pattern
from courrier.access.imap.state import TaggedResult
from courrier.mailbox import names as folders

if TYPE_CHECKING:
    from courrier.access.imap.session import Session
    from courrier.mailbox.api import Root


def _root(s: Session) -> Root:
    assert s.root is not None
    return s.root.root


def _list_entries(names: list[str], subscribed: set[str] | None) -> dict[str, set[str]]:
    """name → attributes, including \\Noselect parents that exist only as part of a longer name."""
    entries: dict[str, set[str]] = {n: set() for n in names}
    parents: set[str] = set()  # names with at least one child (a set, not a scan of every pair of names)
    for n in names:
        parts = n.split(folders.DELIMITER)
        for i in range(1, len(parts)):
            parent = folders.DELIMITER.join(parts[:i])
            parents.add(parent)
            entries.setdefault(parent, {"\\Noselect"})
    for n, attrs in entries.items():
        attrs.add("\\HasChildren" if n in parents else "\\HasNoChildren")  # RFC 3348
        if n in folders.SPECIAL_USE:
            attrs.add(folders.SPECIAL_USE[n])  # RFC 6154 §2
    if subscribed is not None:
        entries = {n: ({"\\Noselect"} if n not in entries else set()) for n in subscribed}
    return entries


def _list_lines(s: Session, subscribed: set[str] | None, rx: Pattern, lsub: bool) -> list[bytes]:
    """The LIST/LSUB responses for the names that match (run in the store's threads: a listing is disk work)."""
    entries = _list_entries(s.store.list_folders(_root(s)), subscribed)
    verb = "LSUB" if lsub else "LIST"
    if lsub and "%" in rx.source:
        # RFC 3501 §6.3.9: "%" must return an unsubscribed parent of a subscribed name, flagged \Noselect
        for name in list(entries):
            if rx.match(name):
                continue
            parts = name.split(folders.DELIMITER)
            for k in range(1, len(parts)):
                parent = folders.DELIMITER.join(parts[:k])
                if rx.match(parent):
                    entries.setdefault(parent, {"\\Noselect"})
    out = []
    for name in sorted(entries, key=lambda n: (n != "INBOX", n)):
        if rx.match(name):
            attrs = " ".join(sorted(entries[name]))
            out.append(f'* {verb} ({attrs}) "{folders.DELIMITER}" '.encode() + U.show(s, name))
    return out


async def _list(s: Session, args: list[Token], lsub: bool) -> str:
    if len(args) != 2:
        raise ParseError(f"usage: {'LSUB' if lsub else 'LIST'} reference pattern")
    ref, pat = U.mailbox(s, args[0], "reference"), U.mailbox(s, args[1], "pattern")
    verb = "LSUB" if lsub else "LIST"
    if pat == "" and not lsub:  # RFC 3501 §6.3.8: the delimiter and root of the reference
        s.send(f'* LIST (\\Noselect) "{folders.DELIMITER}" ""')
        return "LIST completed"
    rx = Pattern(ref + pat, folders.DELIMITER)  # linear-time matching: no regex to backtrack (issue 11 item 9)
    subs = await s.store.run(s.index.subscriptions, _root(s)) if lsub else None
    for line in await s.store.run(_list_lines, s, subs, rx, lsub):
        s.send(line)
    return f"{verb} completed"


SELECT_OPTIONS = frozenset({"SPECIAL-USE", "SUBSCRIBED", "REMOTE", "RECURSIVEMATCH"})  # RFC 6154 §3, RFC 5258 §3.1
RETURN_OPTIONS = frozenset({"SPECIAL-USE", "SUBSCRIBED", "CHILDREN", "STATUS"})  # RFC 6154 §3, 5258 §3.2, 5819 §2
MAX_PATTERNS = 100  # patterns in one extended LIST: each costs a pass over the names
_USES = frozenset(folders.SPECIAL_USE.values())


@dataclasses.dataclass
class ListRequest:
    """An extended LIST (RFC 5258 §3) once parsed; ``status`` is the STATUS items of RETURN (STATUS (…))."""

    ref: str
    patterns: list[str]
    select: frozenset[str]
    returns: frozenset[str]
    status: list[str]


def _options(tok: Token, known: frozenset[str], what: str) -> list[str]:
    if not isinstance(tok, list):
        raise ParseError(f"expected a list of {what} options")
    out = []
    for t in tok:
        if isinstance(t, list):
            out.append(t)  # STATUS's item list, checked by the caller
        elif not isinstance(t, Atom) or t.upper() not in known:
            raise ParseError(f"unknown LIST {what} option {str(t)[:20]!r}")  # RFC 5258 §3: BAD
        else:
            out.append(t.upper())
    return out


def parse_list(args: list[Token], name: Callable[[Token, str], str] = astring) -> ListRequest:
    """RFC 5258 §3 list syntax (the plain RFC 3501 form is its special case); ``name`` reads the reference and
    the patterns (utf8.py once UTF-8 names are on)."""
    args = list(args)
    select: list = _options(args.pop(0), SELECT_OPTIONS, "selection") if args and isinstance(args[0], list) else []
    returns: list = []
    if len(args) == 4 and isinstance(args[2], Atom) and args[2].upper() == "RETURN":
        returns = _options(args[3], RETURN_OPTIONS, "return")
        del args[2:]
    if len(args) != 2:
        raise ParseError("usage: LIST [(selection)] reference pattern [RETURN (options)]")
    pats = args[1] if isinstance(args[1], list) else [args[1]]
    if not pats or len(pats) > MAX_PATTERNS:
        raise ParseError(f"LIST takes 1 to {MAX_PATTERNS} patterns")
    status: list[str] = []
    for i, opt in enumerate(returns):
        if opt == "STATUS":  # RFC 5819 §2: STATUS (items)
            if i + 1 >= len(returns) or not isinstance(returns[i + 1], list) or not returns[i + 1]:
                raise ParseError("usage: RETURN (STATUS (items))")
            status = status_items(returns[i + 1])
        elif isinstance(opt, list) and (i == 0 or returns[i - 1] != "STATUS"):
            raise ParseError("unexpected list in LIST return options")
    if any(isinstance(o, list) for o in select):
        raise ParseError("unexpected list in LIST selection options")
    if "RECURSIVEMATCH" in select and set(select) <= {"RECURSIVEMATCH", "REMOTE"}:
        raise ParseError("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3.1: BAD
    if select and set(select) <= {"REMOTE"}:
        select = []  # RFC 5258 §3.1: REMOTE alone selects like no option at all
    return ListRequest(name(args[0], "reference"), [name(p, "pattern") for p in pats],
                       frozenset(select), frozenset(o for o in returns if isinstance(o, str)), status)


def _extended_entries(s: Session, req: ListRequest) -> list[tuple[str, set[str], bool]]:
    """(name, attributes, CHILDINFO SUBSCRIBED) of the matching names, in LIST's order (run in the store's
    threads)."""
    entries = _list_entries(s.store.list_folders(_root(s)), None)
    rxs = [Pattern(req.ref + p, folders.DELIMITER) for p in req.patterns]
    childinfo: set[str] = set()
    if "SUBSCRIBED" in req.select | req.returns:
        subs = s.index.subscriptions(_root(s))
        for n in subs:
            if n in entries:
                entries[n].add("\\Subscribed")  # RFC 5258 §3.2
            elif "SUBSCRIBED" in req.select:
                entries[n] = {"\\Subscribed", "\\NonExistent"}  # RFC 5258 §3.4: subscribed, gone
        if "SUBSCRIBED" in req.select:
            if "RECURSIVEMATCH" in req.select:
                # RFC 5258 §3.1, §3.5: a matching name that is not itself subscribed but has a subscribed descendant
                # the patterns do not match (that one is listed itself otherwise) comes with CHILDINFO ("SUBSCRIBED")
                for n in subs:
                    if any(r.match(n) for r in rxs):
                        continue
                    parts = n.split(folders.DELIMITER)
                    for i in range(1, len(parts)):
                        parent = folders.DELIMITER.join(parts[:i])
                        if parent not in subs and any(r.match(parent) for r in rxs):
                            childinfo.add(parent)
            entries = {n: a for n, a in entries.items() if "\\Subscribed" in a or n in childinfo}
            for n in childinfo:
                entries.setdefault(n, {"\\NonExistent"})
    if "SPECIAL-USE" in req.select:  # RFC 6154 §3: only the mailboxes that have a special use
        entries = {n: a for n, a in entries.items() if a & _USES}
    return [(n, entries[n], n in childinfo) for n in sorted(entries, key=lambda n: (n != "INBOX", n))
            if any(r.match(n) for r in rxs)]


async def list_(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.8; the extended form (RFC 5258 §3) when there are options or several patterns."""
    if len(args) == 2 and not any(isinstance(a, list) for a in args):
        return await _list(s, args, lsub=False)
    req = parse_list(args, lambda t, what: U.mailbox(s, t, what))
    for name, attrs, childinfo in await s.store.run(_extended_entries, s, req):
        extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if childinfo else b""  # RFC 5258 §3.5 mbox-list-extended
        s.send(f'* LIST ({" ".join(sorted(attrs))}) "{folders.DELIMITER}" '.encode() + U.show(s, name) + extra)
        if req.status and not attrs & {"\\Noselect", "\\NonExistent"}:
            try:  # RFC 5819 §2: right after its LIST response
                s.send(await status_line(s, name, mailbox_path(s, name), req.status))
            except TaggedResult:
                pass  # deleted since the listing: no STATUS, like a mailbox that cannot be selected
    return "LIST completed"


async def lsub(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    return await _list(s, args, lsub=True)
