"""LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with SPECIAL-USE attributes (RFC 6154) and CHILDREN (RFC 3348)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from courrier.access.imap import response as W
from courrier.access.imap.parser import ParseError, Token, astring
from courrier.access.imap.pattern import Pattern
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
            out.append(f'* {verb} ({attrs}) "{folders.DELIMITER}" '.encode() + W.astring(name))
    return out


async def _list(s: Session, args: list[Token], lsub: bool) -> str:
    if len(args) != 2:
        raise ParseError(f"usage: {'LSUB' if lsub else 'LIST'} reference pattern")
    ref, pat = astring(args[0], "reference"), astring(args[1], "pattern")
    verb = "LSUB" if lsub else "LIST"
    if pat == "" and not lsub:  # RFC 3501 §6.3.8: the delimiter and root of the reference
        s.send(f'* LIST (\\Noselect) "{folders.DELIMITER}" ""')
        return "LIST completed"
    rx = Pattern(ref + pat, folders.DELIMITER)  # linear-time matching: no regex to backtrack (issue 11 item 9)
    subs = await s.store.run(s.index.subscriptions, _root(s)) if lsub else None
    for line in await s.store.run(_list_lines, s, subs, rx, lsub):
        s.send(line)
    return f"{verb} completed"


async def list_(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    return await _list(s, args, lsub=False)


async def lsub(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    return await _list(s, args, lsub=True)
