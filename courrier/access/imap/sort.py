"""SORT and THREAD (RFC 5256), DISPLAYFROM/DISPLAYTO (RFC 5957): the pure algorithms, free of the session.

Each message is described once by a :class:`Key` (read from its header section, which the index caches), then:
- :func:`sort` orders messages by the RFC 5256 §3 sort criteria, the sequence number breaking ties (§3);
- :func:`thread_references` builds threads by RFC 5256 §4 REFERENCES (the JWZ algorithm with §4's changes);
- :func:`thread_orderedsubject` groups by base subject (RFC 5256 §4 ORDEREDSUBJECT);
- :func:`render_threads` writes the ``* THREAD`` list (RFC 5256 §5 thread-list).

Strings compare as i;ascii-casemap does (RFC 5256 §3, RFC 4790 §9.2: letters mapped to upper case, then octet
order, so ``C`` < ``[`` < ``_``), extended to the decoded text's non-ASCII letters.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from courrier.mail import addresses as A
from courrier.mail import headers as H

SORT_KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO")  # §3, RFC 5957
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")  # RFC 5256 §4
_MSGID = re.compile(r"<([^<>\s]+)>")


def _decode(text: str) -> str:
    return A._decode(text) if "=?" in text else text  # noqa: SLF001 - the one RFC 2047 decoder of the program


# ---------------------------------------------------------------------------- base subject, RFC 5256 §2.1

_WSP = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:\(fwd\)|\s)+$", re.IGNORECASE)  # subj-trailer = "(fwd)" / WSP
_BLOB = r"\[[^\[\]]*\]\s*"  # subj-blob = "[" *BLOBCHAR "]" *WSP
_REFWD = rf"(?:re|fwd?)\s*(?:{_BLOB})?:"  # subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_LEADER = re.compile(rf"^(?:(?:{_BLOB})*{_REFWD}|\s)", re.IGNORECASE)  # subj-leader = (*subj-blob subj-refwd) / WSP
_LEADING_BLOB = re.compile(rf"^{_BLOB}")


def base_subject(raw: str) -> tuple[str, bool]:
    """RFC 5256 §2.1 base subject of a (RFC 2047-decoded) Subject, and whether it was a reply or forward
    (§2.1 steps 2-5 removed something other than white space: what THREAD=REFERENCES §4 (5) needs)."""
    s = _WSP.sub(" ", _decode(raw))  # (1) decoded, runs of white space as one space
    reply = False
    while True:
        s2 = _TRAILER.sub("", s)  # (2) trailers, repeatedly
        if s2 != s:
            reply |= "(fwd)" in s[len(s2):].lower()
        s = s2
        while True:  # (3)-(4) leaders and blobs, until neither changes the subject
            m = _LEADER.match(s)
            if m:
                reply |= bool(m.group().strip())
                s = s[m.end():]
                continue
            b = _LEADING_BLOB.match(s)
            if b and s[b.end():]:  # (4) a blob is removed only when text remains after it
                s = s[b.end():]
                continue
            break
        if s[:5].lower() == "[fwd:" and s.endswith("]"):  # (5) subj-fwd-hdr subject subj-fwd-trl
            s = s[5:-1]
            reply = True
            continue
        return s.upper(), reply  # (6), in the i;ascii-casemap form compared by SORT and THREAD


# ---------------------------------------------------------------------------- per-message description


@dataclass
class Key:
    """What SORT and THREAD look at in one message."""

    seq: int  # the number the response names (a sequence number, or a UID for UID SORT/THREAD)
    order: int  # the message sequence number: the final tiebreaker (§3)
    arrival: float  # INTERNALDATE (§3 ARRIVAL)
    size: int
    date: float  # §2.2 sent date: the Date field in UTC, the internal date when it has none or cannot be read
    subject: str
    reply: bool
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: str | None
    references: list[str] = field(default_factory=list)


def _first_mailbox(h: H.Header, name: str) -> A.Mailbox | None:
    for f in h.get_all(name):
        boxes = A.mailboxes(A.parse(f.unfolded().decode("utf-8", "surrogateescape")))
        if boxes:
            return boxes[0]
    return None


def _display(m: A.Mailbox | None) -> str:
    """RFC 5957 §2: the first address's display name (decoded) when it has one, else its addr-spec."""
    if m is None:
        return ""
    name = _decode(m.name).strip() if m.name else ""
    return (name or m.addr_spec).upper()


def _ids(value: str) -> list[str]:
    return _MSGID.findall(value)


def describe(seq: int, order: int, arrival: float, size: int, header: bytes) -> Key:
    """A message's :class:`Key` from its header section (CRLF)."""
    h = H.read_header(header)

    def text(name: str) -> str | None:
        f = h.get(name)
        return None if f is None else f.unfolded().decode("utf-8", "surrogateescape")

    date = arrival
    d = text("date")
    if d is not None:
        try:
            dt = email.utils.parsedate_to_datetime(d.strip())
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=datetime.UTC)
            date = dt.timestamp()  # §2.2: compared in UTC
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    subject, reply = base_subject(text("subject") or "")
    frm, to, cc = _first_mailbox(h, "from"), _first_mailbox(h, "to"), _first_mailbox(h, "cc")
    mid = _ids(text("message-id") or "")
    refs = _ids(text("references") or "")
    if not refs:  # §4 (1)(A): In-Reply-To's first message-id when there is no References
        refs = _ids(text("in-reply-to") or "")[:1]
    return Key(seq, order, arrival, size, date, subject, reply,
               # §3 FROM/TO/CC: the addr-mailbox (local part) of the first address
               (frm.local if frm else "").upper(), (to.local if to else "").upper(),
               (cc.local if cc else "").upper(), _display(frm), _display(to),
               mid[0] if mid else None, refs)


# ---------------------------------------------------------------------------- SORT, RFC 5256 §3

_GETTERS: dict[str, Callable[[Key], object]] = {
    "ARRIVAL": lambda k: k.arrival, "CC": lambda k: k.cc, "DATE": lambda k: k.date, "FROM": lambda k: k.from_,
    "SIZE": lambda k: k.size, "SUBJECT": lambda k: k.subject, "TO": lambda k: k.to,
    "DISPLAYFROM": lambda k: k.display_from, "DISPLAYTO": lambda k: k.display_to,
}


def parse_criteria(words: list[str]) -> list[tuple[str, bool]]:
    """§3 sort-criteria: ``[REVERSE] key`` …; (key, reversed). ValueError naming what is wrong. A key named again
    cannot change the order (ties of a key are ties of itself), so only its first use is kept: a command repeating
    ARRIVAL 10,000 times costs one sort, not 10,000."""
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    rev = False
    for w in words:
        u = w.upper()
        if u == "REVERSE":
            if rev:
                raise ValueError("REVERSE twice")
            rev = True
            continue
        if u not in _GETTERS:
            raise ValueError(f"unknown sort key {w[:20]!r}")
        if u not in seen:
            seen.add(u)
            out.append((u, rev))
        rev = False
    if rev or not out:
        raise ValueError("REVERSE must precede a sort key" if rev else "empty sort criteria")
    return out


def sort(keys: list[Key], criteria: list[tuple[str, bool]]) -> list[int]:
    """§3: ordered by each criterion in turn, then by sequence number (never reversed by REVERSE of a key)."""
    out = sorted(keys, key=lambda k: k.order)
    for name, rev in reversed(criteria):  # stable sorts, least significant key first
        out.sort(key=_GETTERS[name], reverse=rev)  # type: ignore[arg-type]
    return [k.seq for k in out]


# ---------------------------------------------------------------------------- THREAD, RFC 5256 §4


class Node:
    """A thread container: a message, or a dummy standing for one that is referenced but not here (§4)."""

    __slots__ = ("children", "key", "parent")

    def __init__(self, key: Key | None = None) -> None:
        self.key = key
        self.parent: Node | None = None
        self.children: list[Node] = []

    def date(self) -> tuple[float, int]:
        """§4 (4): a dummy's sent date is its first child's; the sequence number breaks ties."""
        if self.key is not None:
            return self.key.date, self.key.order
        return self.children[0].date() if self.children else (0.0, 0)

    def reaches(self, other: Node) -> bool:
        """Whether ``other`` is this node or one of its ancestors (linking would make a loop). A node without
        children is nobody's ancestor: the common case (a new message, a new reference) costs one test, so a chain
        of thousands of references is linear, not quadratic."""
        if not other.children:
            return self is other
        n: Node | None = self
        while n is not None:
            if n is other:
                return True
            n = n.parent
        return False

    def adopt(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def _post_order(roots: list[Node]) -> list[Node]:
    """Every node below and including ``roots``, children before their parent. A loop, not recursion: one
    message's References (or one long reply chain) can make a thread thousands deep."""
    out: list[Node] = []
    stack = list(roots)
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.children)
    out.reverse()
    return out


def _sort_siblings(nodes: list[Node]) -> None:
    """§4 (6): every set of siblings by sent date, depth first (a dummy's date needs its children sorted)."""
    for n in _post_order(nodes):
        n.children.sort(key=Node.date)
    nodes.sort(key=Node.date)


def thread_references(keys: list[Key]) -> list[Node]:
    """RFC 5256 §4 REFERENCES; the roots, in order."""
    by_id: dict[str, Node] = {}
    mine: list[Node] = []
    for k in sorted(keys, key=lambda k: k.order):
        # §4 (1): a message without a Message-ID, or with one already taken, gets a unique one
        mid = k.message_id
        if mid is None or (mid in by_id and by_id[mid].key is not None):
            mid = f"\x00{k.order}"
        node = by_id.get(mid)
        if node is None:
            node = by_id[mid] = Node(k)
        else:
            node.key = k
        mine.append(node)
        # (1)(A): link each reference to the next, never making a loop, never changing an existing link
        prev: Node | None = None
        for ref in k.references:
            r = by_id.get(ref)
            if r is None:
                r = by_id[ref] = Node()
            if prev is not None and r.parent is None and not prev.reaches(r):
                prev.adopt(r)
            prev = r
        # (1)(B): the message's parent is its last reference (any other parent link is broken)
        if prev is not None and not prev.reaches(node):
            if node.parent is not prev:
                prev.adopt(node)
        elif node.parent is not None and prev is None:
            node.parent.children.remove(node)
            node.parent = None
    roots = [n for n in by_id.values() if n.parent is None]  # (2)
    roots = _prune(roots)  # (3)
    _sort_siblings(roots)  # (4)
    roots = _merge_subjects(roots)  # (5)
    _sort_siblings(roots)  # (6)
    return roots


def _prune(roots: list[Node]) -> list[Node]:
    """§4 (3): dummies without children go; a dummy's children take its place, except a root dummy with more
    than one child, which stays. Children are pruned before their parent (so no dummy is left below the top)."""
    for n in _post_order(roots):
        kept: list[Node] = []
        for c in n.children:
            if c.key is None:
                kept += c.children  # an empty dummy adds nothing
            else:
                kept.append(c)
        n.children = kept
        for c in kept:
            c.parent = n
    out: list[Node] = []
    for n in roots:
        if n.key is None and len(n.children) <= 1:
            for c in n.children:
                c.parent = None
            out += n.children
        else:
            out.append(n)
    return out


def _thread_subject(n: Node) -> tuple[str, bool]:
    k = n.key if n.key is not None else (n.children[0].key if n.children else None)
    return ("", False) if k is None else (k.subject, k.reply)


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """§4 (5): root threads with the same base subject are gathered."""
    table: dict[str, Node] = {}
    for n in roots:  # (5)(B)
        subj, reply = _thread_subject(n)
        if not subj:
            continue
        old = table.get(subj)
        if old is None or (old.key is not None and (n.key is None or (old.key.reply and not reply))):
            table[subj] = n
    out: list[Node] = []
    at: dict[int, int] = {}  # id(node) -> its index in out (no list.index: linear per merge, quadratic in all)
    later: dict[int, Node] = {}  # id(root not reached yet) -> the dummy that took its place
    for n in roots:  # (5)(C)
        n = later.pop(id(n), n)
        subj, reply = _thread_subject(n)
        t = table.get(subj) if subj else None
        if t is None or t is n:
            at[id(n)] = len(out)
            out.append(n)
            continue
        if t.key is None and n.key is None:  # both dummies: the children become siblings
            for c in list(n.children):
                t.adopt(c)
        elif t.key is None:
            t.adopt(n)
        elif n.key is not None and n.key.reply and not t.key.reply:
            t.adopt(n)
        else:  # a new dummy holds both, and takes the table's place
            d = Node()
            i = at.pop(id(t), -1)
            d.adopt(t)
            d.adopt(n)
            table[subj] = d
            if i >= 0:
                out[i] = d
                at[id(d)] = i
            else:
                later[id(t)] = d  # t comes later: it is replaced when reached
    return out


def thread_orderedsubject(keys: list[Key]) -> list[Node]:
    """RFC 5256 §4 ORDEREDSUBJECT: sorted by base subject then sent date; each run of one subject is a thread
    whose first message is the parent of the others (siblings); threads in order of their first message's date."""
    ordered = sorted(keys, key=lambda k: (k.subject, k.date, k.order))
    roots: list[Node] = []
    for k in ordered:
        if roots and roots[-1].key is not None and roots[-1].key.subject == k.subject:
            roots[-1].adopt(Node(k))
        else:
            roots.append(Node(k))
    roots.sort(key=Node.date)
    return roots


def render_threads(roots: list[Node]) -> str:
    """RFC 5256 §5 thread-list: ``(1 2 (3)(4 5))``; a dummy has no number, its children follow as sub-lists.
    Written with a stack, not recursion, as a thread may nest thousands deep."""
    out: list[str] = []
    stack: list[Node | str] = []
    for r in reversed(roots):
        stack += [")", r, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        cur, nums = item, []
        while True:  # a run of single children is one list of numbers
            if cur.key is not None:
                nums.append(str(cur.key.seq))
            if len(cur.children) == 1 and cur.key is not None:
                cur = cur.children[0]
                continue
            break
        out.append(" ".join(nums))
        if cur.children:
            if nums:
                out.append(" ")
            for c in reversed(cur.children):
                stack += [")", c, "("]
    return "".join(out)
