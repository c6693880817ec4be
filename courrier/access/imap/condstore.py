"""CONDSTORE and QRESYNC (RFC 7162): mod-sequences on the wire.

The index gives every message a mod-sequence and each folder a HIGHESTMODSEQ, and keeps expunge records
(courrier/mailbox/index.py); this module is the protocol side, called from the command handlers:

- enabling (§3.1, §3.2.3): ``ENABLE CONDSTORE|QRESYNC``, or implicitly by any CONDSTORE-enabling command (SELECT/EXAMINE
  (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, SEARCH MODSEQ, STORE UNCHANGEDSINCE, STATUS HIGHESTMODSEQ);
- SELECT/EXAMINE parameters ``(CONDSTORE)`` and ``(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))`` and the
  responses they add (§3.1.2, §3.2.5);
- the FETCH modifiers ``CHANGEDSINCE`` and ``VANISHED`` (§3.1.4, §3.2.6), the STORE modifier ``UNCHANGEDSINCE``
  (§3.1.3), the SEARCH MODSEQ result (§3.1.5; the key itself is in search.py);
- ``VANISHED`` responses (§3.2.10), sent by the session instead of EXPUNGE once QRESYNC is enabled.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from courrier.access.imap import response as W
from courrier.access.imap.parser import (
    Atom,
    ParseError,
    SeqSet,
    Token,
    in_ranges,
    merged,
    number,
    sequence_set,
)
from courrier.access.imap.state import Selected, TaggedResult

if TYPE_CHECKING:
    from courrier.access.imap.session import Session

CAPABILITIES = ("CONDSTORE", "QRESYNC")  # RFC 7162 §3.1, §3.2
MAX_MODSEQ = (1 << 63) - 1  # RFC 7162 §7 mod-sequence-value: 1*DIGIT up to 2^63-1


def enabled(s: Session) -> set[str]:
    """The RFC 7162 extensions this session has turned on (kept on the session: ``s.rfc7162``)."""
    return s.rfc7162


def condstore(s: Session) -> bool:
    return "CONDSTORE" in enabled(s)


def qresync(s: Session) -> bool:
    return "QRESYNC" in enabled(s)


def enable_condstore(s: Session) -> None:
    """RFC 7162 §3.1: a CONDSTORE enabling command; from now on untagged FETCH responses carry MODSEQ (§3.1.4.1)."""
    enabled(s).add("CONDSTORE")


def enable(s: Session, names: list[str]) -> list[str]:
    """RFC 5161 §3.1 for our two: the names newly enabled, for the ENABLED response. QRESYNC enables CONDSTORE too
    (RFC 7162 §3.2.3)."""
    out = []
    on = enabled(s)
    for n in names:
        n = n.upper()
        if n in CAPABILITIES and n not in on:
            on.add(n)
            out.append(n)
            if n == "QRESYNC":
                on.add("CONDSTORE")
    return out


def modseq_value(tok: Token, what: str = "mod-sequence") -> int:
    """RFC 7162 §7 mod-sequence-value / mod-sequence-valzer."""
    n = number(tok, what)
    if n > MAX_MODSEQ:
        raise ParseError(f"{what} too large")
    return n


# ---------------------------------------------------------------------------- SELECT / EXAMINE


@dataclass(frozen=True)
class Resync:
    """RFC 7162 §3.2.5 QRESYNC parameters of SELECT/EXAMINE."""

    uidvalidity: int
    modseq: int
    known: SeqSet | None = None


def select_params(s: Session, args: list[Token]) -> Resync | None:
    """``SELECT name (CONDSTORE)`` (§3.1.8) or ``(QRESYNC (…))`` (§3.2.5): enables CONDSTORE, returns QRESYNC's
    parameters; BAD for QRESYNC when the client has not said ENABLE QRESYNC (§3.2.5)."""
    if len(args) == 1:
        return None
    if len(args) != 2 or not isinstance(args[1], list):
        raise ParseError("usage: SELECT mailbox [(CONDSTORE) | (QRESYNC (uidvalidity modseq [uids]))]")
    params = args[1]
    out: Resync | None = None
    i = 0
    while i < len(params):
        p = params[i]
        if not isinstance(p, Atom):
            raise ParseError("bad SELECT parameter")
        name = p.upper()
        if name == "CONDSTORE":
            enable_condstore(s)
            i += 1
        elif name == "QRESYNC":
            if not qresync(s):
                raise TaggedResult("BAD", "QRESYNC not enabled (RFC 7162 §3.2.5: ENABLE QRESYNC first)")
            if i + 1 >= len(params) or not isinstance(params[i + 1], list):
                raise ParseError("usage: QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])")
            q = params[i + 1]
            if not 2 <= len(q) <= 4:
                raise ParseError("usage: QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])")
            known = None
            if len(q) >= 3:
                if isinstance(q[2], list):  # seq-match data without known-uids
                    raise ParseError("QRESYNC known-uids must come before the sequence match data")
                known = sequence_set(q[2])
            if len(q) == 4 and not (isinstance(q[3], list) and len(q[3]) == 2):
                raise ParseError("QRESYNC sequence match data is (seqs uids)")
            if len(q) == 4:  # §3.2.5.2: an aid the server may use; checked for syntax, the records answer instead
                sequence_set(q[3][0])
                sequence_set(q[3][1])
            uidvalidity = number(q[0], "uidvalidity")
            if uidvalidity == 0:
                raise ParseError("uidvalidity must be non-zero")
            out = Resync(uidvalidity, modseq_value(q[1]), known)
            i += 2
        else:
            raise ParseError(f"unknown SELECT parameter {name[:20]}")
    return out


def missing(ranges: list[tuple[int, int]], present: list[int]) -> list[tuple[int, int]]:
    """The parts of ``ranges`` (sorted, disjoint) that hold none of the ``present`` UIDs (sorted)."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        i = bisect.bisect_left(present, lo)
        cur = lo
        while i < len(present) and present[i] <= hi:
            if present[i] > cur:
                out.append((cur, present[i] - 1))
            cur = present[i] + 1
            i += 1
        if cur <= hi:
            out.append((cur, hi))
    return out


def ranges_text(ranges: list[tuple[int, int]]) -> str:
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def uids_text(uids: list[int]) -> str:
    """Ascending UIDs as a compact sequence set."""
    out: list[tuple[int, int]] = []
    for u in uids:
        if out and u == out[-1][1] + 1:
            out[-1] = (out[-1][0], u)
        else:
            out.append((u, u))
    return ranges_text(out)


def vanished_earlier(index, path, sel: Selected, since: int, ranges: list[tuple[int, int]]) -> str:  # noqa: ANN001
    """RFC 7162 §3.2.5.2 / §3.2.6: the UIDs within ``ranges`` expunged after ``since``, as a set ("" for none).
    From the expunge records when they reach back that far; otherwise every UID of ``ranges`` that is not in the
    mailbox (the RFC lets the server name UIDs the client may not know). Blocking: runs in the store's threads."""
    recs = index.vanished(path, since)
    if recs is None:
        return ranges_text(missing(ranges, sel.uids))
    return uids_text([u for u in recs if in_ranges(ranges, u)])


async def after_select(s: Session, sel: Selected, resync: Resync | None) -> None:
    """The HIGHESTMODSEQ response code (§3.1.2.1; NOMODSEQ for a mailbox without mod-sequences, §3.1.2.2), then for
    QRESYNC with the right UIDVALIDITY (§3.2.5) the VANISHED (EARLIER) and FETCH responses of what changed since."""
    snap = sel.snap
    assert snap is not None
    if snap.highestmodseq <= 0:
        s.send("* OK [NOMODSEQ] no mod-sequences in this mailbox")
        return
    s.send(f"* OK [HIGHESTMODSEQ {snap.highestmodseq}] highest mod-sequence")
    if resync is None or resync.uidvalidity != snap.uidvalidity:
        return  # §3.2.5: another UIDVALIDITY: the client's cache is void, the remaining parameters are ignored
    top = max(snap.uidnext - 1, 1)
    ranges = merged(resync.known, top) if resync.known is not None else [(1, top)]
    since = resync.modseq

    def work() -> tuple[str, list[bytes]]:
        gone = vanished_earlier(s.index, sel.path, sel, since, ranges) if since < snap.highestmodseq else ""
        lines = []
        for q, u in enumerate(sel.uids, 1):
            m = sel.msgs[u]
            if m.modseq > since:
                lines.append(b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))" % (q, u, W.flags(sel.shown_flags(u)),
                                                                            m.modseq))
        return gone, lines

    gone, lines = await s.store.run(work)
    if gone:
        s.send(f"* VANISHED (EARLIER) {gone}")
    for line in lines:
        s.send(line)


def closed(s: Session) -> None:
    """RFC 7162 §3.2.11: [CLOSED] marks where the responses of the implicitly closed mailbox end."""
    s.send("* OK [CLOSED] previous mailbox closed")


# ---------------------------------------------------------------------------- FETCH / STORE / SEARCH


@dataclass(frozen=True)
class FetchMods:
    changedsince: int | None = None
    vanished: bool = False


def fetch_modifiers(s: Session, tok: Token, uid: bool) -> FetchMods:
    """RFC 7162 §3.1.4 ``(CHANGEDSINCE n)`` and §3.2.6 ``VANISHED`` (UID FETCH only, with CHANGEDSINCE, once QRESYNC
    is enabled)."""
    if not isinstance(tok, list) or not tok:
        raise ParseError("usage: FETCH set items (CHANGEDSINCE modseq [VANISHED])")
    since, vanished, i = None, False, 0
    while i < len(tok):
        t = tok[i]
        name = t.upper() if isinstance(t, Atom) else ""
        if name == "CHANGEDSINCE" and i + 1 < len(tok):
            since = modseq_value(tok[i + 1])
            i += 2
        elif name == "VANISHED":
            vanished = True
            i += 1
        else:
            raise ParseError(f"unknown FETCH modifier {str(t)[:20]!r}")
    if vanished:
        if not uid or since is None:
            raise ParseError("VANISHED needs UID FETCH and CHANGEDSINCE (RFC 7162 §3.2.6)")
        if not qresync(s):
            raise ParseError("VANISHED needs ENABLE QRESYNC (RFC 7162 §3.2.6)")
    if since is not None:
        enable_condstore(s)
    return FetchMods(since, vanished)


def store_modifier(s: Session, args: list[Token]) -> tuple[list[Token], int | None]:
    """RFC 7162 §3.1.3: ``STORE set (UNCHANGEDSINCE n) item value`` → (args without the modifier, n)."""
    if len(args) >= 2 and isinstance(args[1], list):
        mods = args[1]
        if len(mods) != 2 or not isinstance(mods[0], Atom) or mods[0].upper() != "UNCHANGEDSINCE":
            raise ParseError("usage: STORE set (UNCHANGEDSINCE modseq) item value")
        enable_condstore(s)
        return [args[0], *args[2:]], modseq_value(mods[1])
    return args, None
