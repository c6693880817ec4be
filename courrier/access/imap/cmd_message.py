"""Selected state (RFC 3501 §6.4): CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE (UID EXPUNGE: RFC 4315 §2.1),
SEARCH, FETCH, STORE, COPY (COPYUID: RFC 4315 §3), MOVE (RFC 6851) and their UID forms (RFC 3501 §6.4.8)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from courrier import log
from courrier.access.imap import cmd_quota, condstore, rev2
from courrier.access.imap import fetch as FE
from courrier.access.imap import parser as P
from courrier.access.imap import response as W
from courrier.access.imap import search as SE
from courrier.access.imap import utf8 as U
from courrier.access.imap.cmd_mailbox import mailbox_path, parse_flags
from courrier.access.imap.parser import Atom, ParseError, Token, sequence_set, want
from courrier.access.imap.state import Selected, no
from courrier.mailbox import flags as F
from courrier.mailbox import names as folders
from courrier.mailbox.api import STREAM_BATCH, Msg, take, to_crlf

if TYPE_CHECKING:
    from courrier.access.imap.session import Session

BATCH = 256  # messages rendered per trip to the disk thread
FLUSH_BYTES = 8 << 20  # ... or fewer: the responses rendered are written out once they reach this size


def _sel(s: Session) -> Selected:
    assert s.selected is not None
    return s.selected


def _writable(s: Session) -> Selected:
    sel = _sel(s)
    if sel.readonly:
        raise no("[READ-ONLY] mailbox is read-only")  # RFC 3501 §6.3.2
    return sel


async def check(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.4.1: every change is already on disk; the update pass after the command does the rest."""
    return "CHECK completed"


async def close(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.4.2: silently expunge \\Deleted messages (unless read-only), then leave the selected state."""
    sel = _sel(s)
    if args:
        raise ParseError("CLOSE takes no arguments")
    if not sel.readonly:
        # the flags as they are now, not as this session last heard them (another session may have changed them)
        if await s.store.run(s.index.expunge, sel.path, list(sel.uids), only_deleted=True):
            s.store.notify(sel.path)
    s.deselect()
    return "CLOSE completed"


async def unselect(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3691 §2: like CLOSE without the expunge."""
    s.deselect()
    return "UNSELECT completed"


async def expunge(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.4.3 (UID EXPUNGE, RFC 4315 §2.1, only within the given UIDs); the update pass sends EXPUNGE."""
    sel = _writable(s)
    only: set[int] | None = None
    if uid:
        want(args, 1, "UID EXPUNGE uid-set")
        only = {sel.uids[i - 1] for i in s.resolve(sequence_set(args[0]), True)}
    elif args:
        raise ParseError("EXPUNGE takes no arguments")
    uids = [u for u in sel.uids if only is None or u in only]
    # §6.4.3 removes what has \Deleted *now*: the index checks under its lock, so a flag another session just
    # cleared saves the message even when this session has not heard of the change yet
    if uids and await s.store.run(s.index.expunge, sel.path, uids, only_deleted=True):
        s.store.notify(sel.path)
    if condstore.qresync(s):  # RFC 7162 §3.2.10: the tagged OK carries the mailbox's HIGHESTMODSEQ after the expunge
        await s.updates(allow_expunge=True)
        snap = await s.store.run(s.index.sync, sel.path)
        return f"[HIGHESTMODSEQ {snap.highestmodseq}] EXPUNGE completed"
    return "EXPUNGE completed"


def message_failed(s: Session, sel: Selected, m: Msg, command: str, e: BaseException) -> None:
    """One message that could not be searched or rendered: logged with its id, then skipped (issue 11 item 11)."""
    log.event("imap.message_failed", level="warn", user=s.user, mailbox=sel.name, uid=m.uid, file=m.base,
              command=command, error=repr(e)[:200])


def _loader(s: Session, sel: Selected, m: Msg):  # noqa: ANN202 - a thunk for fetch.Message
    def load() -> bytes | None:
        data = s.index.read(sel.path, m)
        return None if data is None else to_crlf(data)

    return load


async def search(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.4.4: charsets US-ASCII and UTF-8 (BADCHARSET otherwise); ``RETURN (…)`` asks for one ESEARCH
    response instead (RFC 4731)."""
    sel = _sel(s)
    returns, args = SE.split_return(args)
    charset, rest = SE.split_charset(args)
    if charset is not None and charset not in SE.CHARSETS:
        raise no(f"[BADCHARSET ({' '.join(SE.CHARSETS)})] unsupported charset")  # RFC 3501 §6.4.4, §7.1
    parser = SE.Parser(rest)
    pred = parser.all()
    if parser.modseq_used:
        condstore.enable_condstore(s)  # RFC 7162 §3.1: SEARCH MODSEQ is a CONDSTORE enabling command
    view = [(i, u, sel.msgs[u], sel.flags.get(u, frozenset()), u in sel.recent) for i, u in enumerate(sel.uids, 1)]
    max_uid = sel.uids[-1] if sel.uids else 0

    top_modseq = 0

    def run() -> list[int]:
        nonlocal top_modseq
        hits = []
        for seq, u, m, fl, recent in view:
            msg = FE.Message(m, _loader(s, sel, m), functools.partial(s.index.header, sel.path, m))
            ctx = SE.Context(seq, msg, fl, recent, len(view), max_uid)
            try:
                hit = pred(ctx)
            except Exception as e:  # noqa: BLE001 - one unreadable message is no match; the rest still searches
                message_failed(s, sel, m, "search", e)
                hit = False
            if hit:
                hits.append(u if uid else seq)
                top_modseq = max(top_modseq, m.modseq)
        return hits

    hits = await s.store.run(run)
    # RFC 7162 §3.1.5: with MODSEQ among the keys, the highest mod-sequence of the messages found comes along
    modseq = f" MODSEQ {top_modseq}" if parser.modseq_used and hits else ""
    if returns is None and rev2.on(s):
        returns = ["ALL"]  # RFC 9051 §6.4.4: IMAP4rev2 answers ESEARCH, no RETURN meaning RETURN (ALL)
    if returns is not None:
        s.send(SE.esearch(tag, uid, hits, returns) + modseq)
        return "SEARCH completed"
    s.send("* SEARCH" + "".join(f" {h}" for h in hits) + (f" ({modseq.strip()})" if modseq else ""))
    return "SEARCH completed"


async def _send_parts(s: Session, parts: FE.Parts, msg: FE.Message) -> None:
    """A large message's FETCH response: its octets read STREAM_BATCH at a time on the store's threads and written
    as they come, so the message is never whole in memory. A message that goes away meanwhile cannot be finished
    (the literal's length is on the wire): the connection is closed, as Dovecot does."""
    try:
        for part in parts:
            if isinstance(part, bytes):
                s.write(part)
                continue
            it = iter(part.chunks())
            while got := await s.store.run(take, it, STREAM_BATCH):
                for chunk in got:
                    s.write(chunk)
                del got
                await s.writer.drain()
    except ConnectionError:
        raise
    except OSError as e:  # StreamBroken, or the database gone: no NO can follow half a literal
        log.event("imap.stream_broken", level="warn", user=s.user, uid=msg.msg.uid, error=str(e)[:200])
        s.writer.close()
        raise ConnectionResetError("message gone while being sent") from None
    finally:
        await s.store.run(msg.close)


async def fetch(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.4.5: renders in batches off the loop; BODY[] without .PEEK sets \\Seen first (and reports it)."""
    sel = _sel(s)
    if len(args) not in (2, 3):
        raise ParseError("usage: FETCH sequence-set items [(modifiers)]")
    seqs = s.resolve(sequence_set(args[0]), uid)
    items = FE.parse_items(args[1])
    mods = condstore.fetch_modifiers(s, args[2], uid) if len(args) == 3 else condstore.FetchMods()
    if any(i.name == "MODSEQ" for i in items):
        condstore.enable_condstore(s)  # RFC 7162 §3.1: FETCH MODSEQ is a CONDSTORE enabling command
    if mods.vanished:  # RFC 7162 §3.2.6: the UIDs of the set expunged since, before the FETCH responses
        top = max((await s.store.run(s.index.sync, sel.path)).uidnext - 1, 1)
        ranges = P.merged(sequence_set(args[0]), top)
        since = mods.changedsince
        assert since is not None
        gone = await s.store.run(condstore.vanished_earlier, s.index, sel.path, sel, since, ranges)
        if gone:
            s.send(f"* VANISHED (EARLIER) {gone}")
    if mods.changedsince is not None:  # RFC 7162 §3.1.4.1: only messages changed since, with their MODSEQ
        seqs = [q for q in seqs if sel.msgs[sel.uids[q - 1]].modseq > mods.changedsince]
        if not any(i.name == "MODSEQ" for i in items):
            items = [*items, FE.Item("MODSEQ")]
    changed: set[int] = set()
    if not sel.readonly and any(i.sets_seen for i in items):
        todo = [(u, frozenset({F.SEEN})) for u in (sel.uids[q - 1] for q in seqs)
                if F.SEEN not in sel.flags.get(u, ())]
        if todo:
            done = await s.store.run(s.index.store_flags, sel.path, todo, "add")
            for u, m in done.items():
                sel.flags[u] = m.flags
                sel.msgs[u] = m
            changed = set(done)
            s.store.notify(sel.path)
    with_flags = items if any(i.name == "FLAGS" for i in items) else [*items, FE.Item("FLAGS")]
    if condstore.condstore(s) and not any(i.name == "MODSEQ" for i in with_flags):
        with_flags = [*with_flags, FE.Item("MODSEQ")]  # RFC 7162 §3.1.4.1: a flag change reports its MODSEQ
    failures = 0
    # one message's response may hold a few copies of it (BODY.PEEK[] and RFC822 together), never more
    limit = 2 * s.server.limits.max_message_size + (1 << 20)
    pos = 0
    unknown_cte: list[int] = []  # RFC 3516 §4.3: messages whose BINARY part cannot be decoded
    while pos < len(seqs):
        jobs = [(q, sel.msgs[u], with_flags if u in changed else items, sel.shown_flags(u))
                for q, u in ((q, sel.uids[q - 1]) for q in seqs[pos:pos + BATCH])]

        def render(jobs=jobs) -> tuple[bytes, int, int, bool, tuple[FE.Parts, FE.Message] | None]:  # noqa: ANN001
            """(responses, messages that failed, messages done, whether one response went past ``limit``, a large
            message's response to send from its stream); stops after FLUSH_BYTES, so what waits in memory for the
            client is bounded too, and after a streamed response, which the loop below sends piece by piece."""
            out, failed, size = [], 0, 0
            for done, (q, m, its, fl) in enumerate(jobs, 1):
                msg = FE.Message(m, _loader(s, sel, m), functools.partial(s.index.header, sel.path, m),
                                 functools.partial(s.index.open, sel.path, m))
                try:
                    r = FE.render(msg, q, its, fl, uid, limit)
                except FE.ResponseTooLarge:
                    msg.close()
                    return b"".join(out), failed, done, True, None
                except FE.BI.UnknownCTE:
                    msg.close()
                    unknown_cte.append(q)
                    continue
                except Exception as e:  # noqa: BLE001 - one message that cannot be rendered is skipped, not the rest
                    msg.close()
                    message_failed(s, sel, m, "fetch", e)
                    failed += 1
                    continue
                if isinstance(r, list):
                    if msg.missing:
                        msg.close()
                        continue
                    return b"".join(out), failed, done, False, (r, msg)
                msg.close()  # a stream opened for BINARY.SIZE[] only
                if not msg.missing:
                    out.append(r)
                    size += len(r)
                if size >= FLUSH_BYTES:
                    return b"".join(out), failed, done, False, None
            return b"".join(out), failed, len(jobs), False, None

        data, bad, done, too_large, streamed = await s.store.run(render)
        failures += bad
        pos += done
        s.write(data)
        await s.writer.drain()
        if streamed is not None:
            await _send_parts(s, *streamed)
        if too_large:
            raise no(f"[LIMIT] response for one message over {limit} octets; fetch fewer items at once")
    if unknown_cte:
        raise no(f"[UNKNOWN-CTE] message {unknown_cte[0]} has a part whose transfer encoding cannot be decoded")
    if failures:  # as Dovecot: the others were sent; the tagged NO says some were not
        raise no(f"[SERVERBUG] {failures} message(s) could not be fetched; see the server log")
    return "FETCH completed"


async def store(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.4.6: FLAGS, +FLAGS, -FLAGS (.SILENT); the new flags are sent back unless silent."""
    sel = _writable(s)
    args, unchangedsince = condstore.store_modifier(s, args)
    # RFC 3501 §9 store-att-flags: the flags come as a parenthesized list or as atoms separated by spaces
    if len(args) < 3 or not isinstance(args[1], Atom) or (isinstance(args[2], list) and len(args) > 3):
        raise ParseError("usage: STORE sequence-set (+|-)FLAGS[.SILENT] (flags)")
    seqs = s.resolve(sequence_set(args[0]), uid)
    op = args[1].upper()
    silent = op.endswith(".SILENT")
    op = op.removesuffix(".SILENT")
    if op not in ("FLAGS", "+FLAGS", "-FLAGS"):
        raise ParseError(f"unknown STORE item {op[:20]}")
    fl = parse_flags(args[2] if isinstance(args[2], list) else args[2:])
    mode = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}[op]
    current: dict[int, Msg] = {}
    modified: set[int] = set()  # RFC 7162 §3.1.3: changed since UNCHANGEDSINCE, so left alone
    # +FLAGS/-FLAGS apply to the flags as stored now (under the index lock), not to this session's possibly older
    # view: two sessions adding different flags at once both win
    done = await s.store.run(functools.partial(s.index.store_flags, unchangedsince=unchangedsince, modified=modified),
                             sel.path, [(sel.uids[q - 1], fl) for q in seqs], mode, current)
    with_modseq = condstore.condstore(s)
    for u, m in current.items():
        sel.msgs[u] = m
        if u in modified:
            continue
        if silent:  # what the client now believes; a change made elsewhere is then reported by the update pass
            view = sel.flags.get(u, frozenset())
            sel.flags[u] = fl if mode == "set" else (view | fl if mode == "add" else view - fl)
        else:
            sel.flags[u] = m.flags
    if done:
        s.store.notify(sel.path)
    # RFC 3501 §7.2.6: the client hears of a keyword (FLAGS, PERMANENTFLAGS) before any FETCH carries it — the
    # keywords it set, and those the FETCH responses below show (another session may have added one meanwhile)
    shown: set[str] = set(fl) if mode != "remove" else set()
    if not silent:
        shown.update(*(m.flags for m in current.values()))
    new_keywords = {f for f in shown if not f.startswith("\\")} - sel.keywords
    if current and new_keywords:
        sel.keywords |= new_keywords
        s.send_flags(sel)
    for q in seqs:
        u = sel.uids[q - 1]
        if u not in current or u in modified:
            continue
        uid_part = b"UID %d " % u if uid else b""
        mod = b" MODSEQ (%d)" % current[u].modseq if with_modseq else b""
        if not silent:  # §6.4.6: the flags after the change, for each message that still exists
            s.send(b"* %d FETCH (%sFLAGS %s%s)" % (q, uid_part, W.flags(sel.shown_flags(u)), mod))
        elif with_modseq and u in done:  # RFC 7162 §3.1.3: even .SILENT reports the new MODSEQ of a change
            s.send(b"* %d FETCH (%sMODSEQ (%d))" % (q, uid_part, current[u].modseq))
    if modified:  # RFC 7162 §3.1.3: sequence numbers for STORE, UIDs for UID STORE
        nums = sorted(u if uid else sel.seq_of(u) for u in modified)
        return f"[MODIFIED {condstore.uids_text(nums)}] Conditional STORE failed"
    return "STORE completed"


def uid_set(uids: list[int]) -> str:
    """A compact RFC 3501 sequence set (``1:3,7``) for COPYUID, in the given order."""
    out: list[str] = []
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else f"{uids[i]}:{uids[j]}")
        i = j + 1
    return ",".join(out)


async def _copy(s: Session, args: list[Token], uid: bool, move: bool) -> tuple[str, str]:
    sel = _writable(s) if move else _sel(s)
    want(args, 2, f"{'MOVE' if move else 'COPY'} sequence-set mailbox")
    seqs = s.resolve(sequence_set(args[0]), uid)
    name = folders.normalize(U.mailbox(s, args[1]))
    dst = mailbox_path(s, name, trycreate=True)  # RFC 3501 §6.4.7: [TRYCREATE]
    uids = [sel.uids[q - 1] for q in seqs]
    if not uids:
        return "", ""
    if not move:  # a MOVE between the account's folders changes no usage (RFC 9208 §7.1 names COPY)
        await cmd_quota.check_room(s, sum(sel.msgs[u].size for u in uids if u in sel.msgs))
    validity, pairs = await s.store.run(s.index.copy, sel.path, uids, dst, move=move)
    s.store.notify(dst)
    if move:
        s.store.notify(sel.path)
    if not pairs:
        return "", ""
    return f"COPYUID {validity} {uid_set([a for a, _ in pairs])} {uid_set([b for _, b in pairs])}", ""


async def copy(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    code, _ = await _copy(s, args, uid, move=False)
    return f"[{code}] COPY completed" if code else "COPY completed"


async def move(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 6851 §3.3: COPYUID goes in an untagged OK before the EXPUNGEs; the update pass sends those."""
    code, _ = await _copy(s, args, uid, move=True)
    if code:
        s.send(f"* OK [{code}] moved")
    return "MOVE completed"
