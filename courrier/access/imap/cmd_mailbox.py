"""Authenticated state (RFC 3501 §6.3): SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS,
APPEND (UIDPLUS APPENDUID, RFC 4315), and IDLE (RFC 2177). LIST and LSUB are in cmd_list.py."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

from courrier.access.imap import cmd_quota, condstore, rev2
from courrier.access.imap import extensions as EXT
from courrier.access.imap import utf8 as U
from courrier.access.imap.parser import Atom, ParseError, Token, date_time, want
from courrier.access.imap.state import IDLE_MAX, IDLE_RESCAN, LOGOUT, LineTooLong, TaggedResult, no
from courrier.mailbox import flags as F
from courrier.mailbox import names as folders
from courrier.mailbox.api import Folder, Root, crlf_size

if TYPE_CHECKING:
    from courrier.access.imap.session import Session



def _root(s: Session) -> Root:
    assert s.root is not None
    return s.root.root


def mailbox_path(s: Session, name: str, must_exist: bool = True, trycreate: bool = False) -> Folder:
    """The store's folder named ``name``: NO for a name that cannot be used or (``must_exist``) a missing folder."""
    try:
        p = s.store.folder(_root(s), name)
    except folders.FolderError as e:
        raise no(str(e)) from None
    if must_exist and not s.store.folder_exists(_root(s), name):
        raise no(("[TRYCREATE] " if trycreate else "[NONEXISTENT] ") + "no such mailbox")  # RFC 3501 §6.3.11
    return p


async def _select(s: Session, args: list[Token], readonly: bool) -> str:
    """RFC 3501 §6.3.1/§6.3.2: the mailbox's FLAGS, EXISTS, RECENT, UNSEEN, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT."""
    if not args:
        raise ParseError("usage: SELECT mailbox")
    resync = condstore.select_params(s, args)  # RFC 7162 §3.1.8, §3.2.5
    name = folders.normalize(U.mailbox(s, args[0]))
    if s.selected is not None:
        condstore.closed(s)  # RFC 7162 §3.2.11, RFC 9051 §7.1 CLOSED
    s.deselect()
    path = mailbox_path(s, name)
    sel = await s.select(name, path, readonly)
    snap = sel.snap
    assert snap is not None
    s.send_flags(sel)
    s.send(b"* %d EXISTS" % len(sel.uids))
    if rev2.on(s):  # RFC 9051 Appendix E: no \Recent, no RECENT, no [UNSEEN]
        sel.recent.clear()
        s.send(f'* LIST () "{folders.DELIMITER}" '.encode() + U.show(s, name))  # RFC 9051 §6.3.2: the name
    else:
        s.send(b"* %d RECENT" % s.recent_count(sel))
        unseen = next((i for i, u in enumerate(sel.uids, 1) if F.SEEN not in sel.flags[u]), None)
        if unseen:
            s.send(f"* OK [UNSEEN {unseen}] first unseen message")
    s.send(f"* OK [UIDVALIDITY {snap.uidvalidity}] UIDs valid")
    s.send(f"* OK [UIDNEXT {snap.uidnext}] predicted next UID")
    s.send(f"* OK [MAILBOXID ({await EXT.mailbox_id(s, path, snap.uidvalidity, name)})] Ok")  # RFC 8474 §4.1
    await condstore.after_select(s, sel, resync)
    return ("[READ-ONLY] EXAMINE" if readonly else "[READ-WRITE] SELECT") + " completed"


async def select(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    return await _select(s, args, readonly=False)


async def examine(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    return await _select(s, args, readonly=True)


async def create(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.3: a trailing delimiter only says more names will follow below; it is dropped."""
    if len(args) not in (1, 2):
        raise ParseError("usage: CREATE mailbox [(USE (attributes))]")
    name = U.mailbox(s, args[0]).rstrip(folders.DELIMITER)
    if len(args) == 2:
        _check_use(name, args[1])
    try:
        path = await s.store.run(s.store.create_folder, _root(s), name)
    except folders.FolderError as e:
        raise no(("[ALREADYEXISTS] " if "exists" in str(e) else "") + str(e)) from None
    return f"[MAILBOXID ({await EXT.mailbox_id(s, path, 0, name)})] CREATE completed"  # RFC 8474 §4.1


def _check_use(name: str, opts: Token) -> None:
    """RFC 6154 §3 CREATE-SPECIAL-USE: ``(USE (\\Junk))``. A folder's special use here follows from its name
    (mailbox/names.py SPECIAL_USE), so a use is granted only to the name that carries it; any other request is
    NO [USEATTR] and nothing is created, as §3 asks of a server that cannot give the use."""
    if not (isinstance(opts, list) and len(opts) == 2 and isinstance(opts[0], Atom) and opts[0].upper() == "USE"
            and isinstance(opts[1], list) and all(isinstance(a, Atom) for a in opts[1])):
        raise ParseError("usage: CREATE mailbox (USE (attributes))")
    uses = {str(a).lower() for a in opts[1]}  # RFC 3501 §9: flag and attribute names are case-insensitive
    if uses and uses != {folders.SPECIAL_USE.get(folders.normalize(name), "").lower()}:
        raise no("[USEATTR] special-use attributes here follow the folder's name: "
                 + ", ".join(f"{v} is {k}" for k, v in folders.SPECIAL_USE.items()))


async def delete(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.4."""
    want(args, 1, "DELETE mailbox")
    name = U.mailbox(s, args[0])
    if s.selected is not None and s.selected.name == folders.normalize(name):
        s.deselect()
    try:
        await s.store.run(s.store.delete_folder, _root(s), name)
    except folders.FolderError as e:
        raise no(str(e)) from None
    return "DELETE completed"


async def rename(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.5; renaming INBOX moves its messages into the new mailbox and leaves INBOX empty."""
    want(args, 2, "RENAME old new")
    old, new = U.mailbox(s, args[0]), U.mailbox(s, args[1])
    root = _root(s)
    try:
        await s.store.run(s.store.rename_folder, root, old, new)
    except folders.FolderError as e:
        raise no(str(e)) from None
    if folders.is_inbox(old):  # its messages moved out
        s.store.notify(s.store.folder(root, "INBOX"))
    return "RENAME completed"


async def subscribe(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.6."""
    want(args, 1, "SUBSCRIBE mailbox")
    name = folders.normalize(U.mailbox(s, args[0]))
    mailbox_path(s, name)
    await s.store.run(s.index.subscribe, _root(s), name, True)
    return "SUBSCRIBE completed"


async def unsubscribe(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.7."""
    want(args, 1, "UNSUBSCRIBE mailbox")
    await s.store.run(s.index.subscribe, _root(s), folders.normalize(U.mailbox(s, args[0])), False)
    return "UNSUBSCRIBE completed"


async def status(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.10: MESSAGES, RECENT, UIDNEXT, UIDVALIDITY, UNSEEN."""
    if len(args) != 2 or not isinstance(args[1], list) or not args[1]:
        raise ParseError("usage: STATUS mailbox (items)")
    name = folders.normalize(U.mailbox(s, args[0]))
    items = status_items(args[1])
    if "HIGHESTMODSEQ" in items:
        condstore.enable_condstore(s)  # RFC 7162 §3.1: a CONDSTORE enabling command
    path = mailbox_path(s, name)
    s.send(await status_line(s, name, path, items))
    return "STATUS completed"


STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN",  # RFC 3501 §6.3.10
                "HIGHESTMODSEQ",  # RFC 7162 §3.1.10
                *EXT.STATUS_ITEMS)


def status_items(toks: list[Token]) -> list[str]:
    """The STATUS item names asked for (also in LIST's RETURN (STATUS …), RFC 5819); BAD for an unknown one."""
    out = []
    for it in toks:
        if not isinstance(it, Atom) or it.upper() not in STATUS_ITEMS:
            raise ParseError(f"unknown STATUS item {str(it)[:20]!r}")
        out.append(it.upper())
    return out


async def status_line(s: Session, name: str, path: Folder, items: list[str]) -> bytes:
    """One ``* STATUS name (…)`` response for an existing folder."""
    snap = await s.store.run(s.index.sync, path)
    recent = await s.store.run(s.index.recent_count, path)
    values = {"MESSAGES": len(snap.messages), "RECENT": recent, "UIDNEXT": snap.uidnext,
              "UIDVALIDITY": snap.uidvalidity, "HIGHESTMODSEQ": snap.highestmodseq,
              "UNSEEN": sum(1 for m in snap.messages if F.SEEN not in m.flags)}
    values |= await EXT.status_values(s, name, path, snap, items)
    return b"* STATUS " + U.show(s, name) + f" ({' '.join(f'{it} {values[it]}' for it in items)})".encode()


async def append(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.3.11: APPEND mailbox [(flags)] [date-time] literal; answers APPENDUID (RFC 4315 §3)."""
    args = U.append_args(s, args)  # RFC 6855 §4 UTF8 (literal8)
    if not 2 <= len(args) <= 4 or not isinstance(args[-1], bytes):
        raise ParseError("usage: APPEND mailbox [(flags)] [date-time] {size}")
    name = folders.normalize(U.mailbox(s, args[0]))
    path = mailbox_path(s, name, trycreate=True)
    flags: frozenset[str] = frozenset()
    when = None
    for a in args[1:-1]:
        if isinstance(a, list):
            flags = parse_flags(a)
        else:
            when = date_time(a)
    data = args[-1]
    await cmd_quota.check_room(s, crlf_size(data))  # RFC 9208 §7.1 [OVERQUOTA]
    uidvalidity, new_uid = await s.store.run(s.index.append, path, data, flags, when or time.time())
    s.store.notify(path)
    return f"[APPENDUID {uidvalidity} {new_uid}] APPEND completed"


# RFC 3501 §9 flag-keyword = atom: 1*ATOM-CHAR, i.e. printable ASCII but ( ) { SP % * " \ ]
_KEYWORD = re.compile(r"^[\x21\x23-\x24\x26-\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+$")
MAX_KEYWORD = 100


def parse_flags(toks: list[Token] | Token) -> frozenset[str]:
    """RFC 3501 §9 flag-list; \\Recent may not be set by a client and system flags are checked by name."""
    items = toks if isinstance(toks, list) else [toks]
    out = set()
    for t in items:
        if not isinstance(t, Atom):
            raise ParseError("flags are atoms")
        f = F.canonical(str(t))
        if f.startswith("\\") and f not in F.SYSTEM:
            raise ParseError(f"unknown system flag {f[:20]!r}")
        if not f.startswith("\\") and (not _KEYWORD.match(f) or len(f) > MAX_KEYWORD):
            # a "]" or 8-bit octet in a keyword would break the FLAGS and PERMANENTFLAGS responses
            raise ParseError(f"invalid keyword {f[:20]!r}")
        out.add(f)
    return frozenset(out)


async def idle(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 2177: "+ idling", then untagged updates as they happen, until the client sends DONE."""
    if args:
        raise ParseError("IDLE takes no arguments")
    s.send("+ idling")
    await s.writer.drain()
    done = asyncio.ensure_future(s.reader.readuntil(b"\n"))
    deadline = time.monotonic() + IDLE_MAX
    try:
        while not done.done():
            if s.state == LOGOUT:  # the update pass said BYE (UIDVALIDITY changed)
                return "IDLE terminated"
            if time.monotonic() > deadline:
                s.send("* BYE IDLE for too long")
                s.state = LOGOUT
                return "IDLE terminated"
            sel = s.selected
            waiters: list[asyncio.Future[object]] = [done]  # type: ignore[list-item]
            dirty = asyncio.ensure_future(sel.dirty.wait()) if sel else None
            if dirty:
                waiters.append(dirty)
            await asyncio.wait(waiters, timeout=IDLE_RESCAN, return_when=asyncio.FIRST_COMPLETED)
            if dirty:
                dirty.cancel()
            if sel and not done.done():
                await s.updates(allow_expunge=True)
                await s.writer.drain()
        try:
            line = done.result().rstrip(b"\r\n")
        except asyncio.LimitOverrunError:
            raise LineTooLong from None
    finally:
        if not done.done():
            done.cancel()
    if line.upper() != b"DONE":
        raise TaggedResult("BAD", "expected DONE")
    return "IDLE terminated"
