"""SORT and THREAD (RFC 5256 §3, §4; UID forms §3, RFC 3501 §6.4.8), ESORT (RFC 5267 §3) and DISPLAYFROM /
DISPLAYTO (RFC 5957). The search keys are SEARCH's (search.py); the orderings are in sort.py.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from courrier.access.imap import fetch as FE
from courrier.access.imap import search as SE
from courrier.access.imap import sort as SO
from courrier.access.imap.parser import Atom, ParseError, Token, astring
from courrier.access.imap.state import Selected, no
from courrier.mailbox.api import Msg, to_crlf

if TYPE_CHECKING:
    from courrier.access.imap.session import Session

CAPABILITIES = ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT")
ESORT_OPTIONS = ("MIN", "MAX", "COUNT", "ALL")  # RFC 5267 §3.2 (PARTIAL belongs to CONTEXT=SORT: not offered)


def _charset(tok: Token) -> None:
    """RFC 5256 §3, §4: the charset is mandatory; US-ASCII and UTF-8 are known (BADCHARSET otherwise)."""
    try:
        cs = astring(tok, "charset").upper()
    except ParseError:
        cs = "?"
    if cs not in SE.CHARSETS:
        raise no(f"[BADCHARSET ({' '.join(SE.CHARSETS)})] unsupported charset")


def _loader(s: Session, sel: Selected, m: Msg):  # noqa: ANN202 - a thunk for fetch.Message
    def load() -> bytes | None:
        data = s.index.read(sel.path, m)
        return None if data is None else to_crlf(data)

    return load


class _Cache:
    """Each message's sort facts (its :class:`sort.Key` without numbers), kept across commands: a message never
    changes, so the header is read and parsed once per message, not at every SORT or THREAD (Dovecot keeps the same
    in its cache file). Bounded; the oldest entries go first. Shared by the store's threads, hence the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int, int], SO.Key] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, k: tuple[str, int, int]) -> SO.Key | None:
        with self.lock:
            return self.items.get(k)

    def put(self, k: tuple[str, int, int], v: SO.Key) -> None:
        with self.lock:
            self.items[k] = v
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_FACTS: weakref.WeakKeyDictionary[object, _Cache] = weakref.WeakKeyDictionary()
_FACTS_LOCK = threading.Lock()


def facts_of(index: object) -> _Cache:
    """The cache of one store's index. Per index, not per process: a folder's key is relative to its data dir, so
    two stores in one process (tests, tools) would otherwise share entries for different messages."""
    with _FACTS_LOCK:
        cache = _FACTS.get(index)
        if cache is None:
            cache = _FACTS[index] = _Cache(200_000)  # ~300 octets each
        return cache


async def _keys(s: Session, criteria: list[Token], uid: bool, header: bool = True) -> list[SO.Key]:
    """The matching messages' sort keys (the search and the header reading run in the store's threads);
    ``header``: whether the keys need the header fields (ARRIVAL and SIZE alone do not)."""
    sel = s.selected
    assert sel is not None
    pred = SE.Parser(criteria).all()
    view = [(i, u, sel.msgs[u], sel.flags.get(u, frozenset()), u in sel.recent) for i, u in enumerate(sel.uids, 1)]
    max_uid = sel.uids[-1] if sel.uids else 0
    folder = s.index.key(sel.path)
    facts_cache = facts_of(s.index)

    def run() -> list[SO.Key]:
        out = []
        for seq, u, m, fl, recent in view:
            msg = FE.Message(m, _loader(s, sel, m), functools.partial(s.index.header, sel.path, m))
            try:
                if not pred(SE.Context(seq, msg, fl, recent, len(view), max_uid)):
                    continue
                n = u if uid else seq
                if not header:
                    out.append(SO.Key(n, seq, m.internaldate, m.size, m.internaldate, "", False, "", "", "", "", "",
                                      None))
                    continue
                ck = (folder, sel.uidvalidity, u)
                facts = facts_cache.get(ck)
                if facts is None:
                    facts = SO.describe(0, 0, m.internaldate, m.size, msg.header)
                    if msg.missing:
                        continue
                    facts_cache.put(ck, facts)
                out.append(dataclasses.replace(facts, seq=n, order=seq))
            except Exception:  # noqa: BLE001, S112 - an unreadable message is no match (as in SEARCH)
                continue
        return out

    return await s.store.run(run)


async def sort(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 5256 §3 ``SORT (criteria) charset search-keys``; ``SORT RETURN (…)`` answers one ESEARCH (RFC 5267 §3)."""
    args = list(args)
    returns: list[str] | None = None
    if args and isinstance(args[0], Atom) and args[0].upper() == "RETURN":  # RFC 5267 §3.2
        if len(args) < 2 or not isinstance(args[1], list):
            raise ParseError("usage: SORT RETURN (options) (criteria) charset keys")
        returns = []
        for t in args[1]:
            if not isinstance(t, Atom) or t.upper() not in ESORT_OPTIONS:
                raise ParseError(f"unknown SORT return option {str(t)[:20]!r}")
            returns.append(t.upper())
        returns = returns or ["ALL"]
        args = args[2:]
    if len(args) < 3 or not isinstance(args[0], list) or not all(isinstance(t, Atom) for t in args[0]):
        raise ParseError("usage: SORT (criteria) charset search-keys")
    try:
        criteria = SO.parse_criteria([str(t) for t in args[0]])
    except ValueError as e:
        raise ParseError(str(e)) from None
    _charset(args[1])
    header = any(k not in ("ARRIVAL", "SIZE") for k, _ in criteria)
    keys = await _keys(s, args[2:], uid, header)
    order = await s.store.run(SO.sort, keys, criteria)  # off the loop: 100,000 keys take a while
    if returns is not None:
        s.send(_esort(tag, uid, order, returns))
    else:
        s.send("* SORT" + "".join(f" {n}" for n in order))
    return "SORT completed"


def _esort(tag: str, uid: bool, order: list[int], opts: list[str]) -> str:
    """RFC 5267 §3.2: MIN/MAX are the first and last in sort order; ALL keeps the sort order."""
    out = [f'* ESEARCH (TAG "{tag}")'] + (["UID"] if uid else [])
    values = {"COUNT": str(len(order))}
    if order:
        runs: list[str] = []
        i = 0
        while i < len(order):  # ascending runs written as ranges: the order is kept
            j = i
            while j + 1 < len(order) and order[j + 1] == order[j] + 1:
                j += 1
            runs.append(str(order[i]) if i == j else f"{order[i]}:{order[j]}")
            i = j + 1
        values |= {"MIN": str(order[0]), "MAX": str(order[-1]), "ALL": ",".join(runs)}
    out += [f"{o} {values[o]}" for o in ESORT_OPTIONS if o in opts and o in values]
    return " ".join(out)


async def thread(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 5256 §4 ``THREAD algorithm charset search-keys``."""
    if len(args) < 3 or not isinstance(args[0], Atom):
        raise ParseError("usage: THREAD algorithm charset search-keys")
    algo = args[0].upper()
    if algo not in SO.THREAD_ALGORITHMS:
        raise ParseError(f"unknown threading algorithm {algo[:20]!r}")
    _charset(args[1])
    keys = await _keys(s, args[2:], uid)

    def build() -> str:  # off the loop, as SORT's ordering
        roots = SO.thread_references(keys) if algo == "REFERENCES" else SO.thread_orderedsubject(keys)
        return "* THREAD " + SO.render_threads(roots) if roots else "* THREAD"

    s.send(await s.store.run(build))
    return "THREAD completed"
