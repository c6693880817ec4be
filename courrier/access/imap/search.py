"""SEARCH (RFC 3501 §6.4.4): every search key, parsed into a predicate tree and run off the event loop.

String keys match case-insensitively as substrings (RFC 3501 §6.4.4) of decoded text: header values through
RFC 2047, bodies through their Content-Transfer-Encoding and charset, so UTF-8 searches find what a user sees.
Dates compare days only, ignoring time and timezone (RFC 3501 §6.4.4 "disregarding time and timezone").

No message can break a search (issue 11 item 11): headers are parsed from the header section alone, bodies are
walked with the bounded MIME walker (courrier/mailbox/mime.py: depth and part count bounded, unknown charsets read
as UTF-8 or latin-1), and key nesting (NOT, OR, parentheses) is bounded by MAX_DEPTH.
"""

from __future__ import annotations

import datetime
import email
import email.header
import email.policy
import email.utils
from collections.abc import Callable
from dataclasses import dataclass, field

from courrier.access.imap import search_ext
from courrier.access.imap.fetch import Message
from courrier.access.imap.parser import (
    Atom,
    ParseError,
    SeqSet,
    Token,
    astring,
    date,
    in_ranges,
    is_sequence_set,
    merged,
    number,
)
from courrier.access.imap.parser import sequence_set as parse_seqset
from courrier.mail import addresses as A
from courrier.mail import headers as H
from courrier.mailbox import flags as F
from courrier.mailbox import mime

CHARSETS = ("US-ASCII", "UTF-8")
MAX_DEPTH = 100  # NOT / OR / parenthesized keys inside one another (an OR chain of 100 senders still fits)


@dataclass
class Context:
    """What a predicate may look at for one message."""

    seq: int
    msg: Message
    flags: frozenset[str]
    recent: bool
    max_seq: int
    max_uid: int
    _decoded: email.message.Message | None = field(default=None)
    _header: H.Header | None = field(default=None)

    def parsed(self) -> email.message.Message:
        """The header fields (the header section only: the stdlib parser recurses into bodies without a bound)."""
        if self._decoded is None:
            header = self.msg.header[:mime.MAX_HEADER_BYTES]  # fields past it are not searched (as in mime.py)
            self._decoded = email.message_from_bytes(header, policy=email.policy.compat32)
        return self._decoded

    def fields(self) -> H.Header:
        """The header fields as the program's one reader sees them (``courrier.mail.headers``): the fields
        ENVELOPE shows and submission checked, an obsolete ``From :`` included."""
        if self._header is None:
            self._header = H.read_header(self.msg.header)
        return self._header

    def header(self, name: str) -> list[str]:
        return [_decode(f.unfolded().decode("utf-8", "surrogateescape")) for f in self.fields().get_all(name)]

    def addresses(self, name: str) -> list[str]:
        """Each ``name`` field's addresses written as the ENVELOPE has them — ``Name <user@host>``, groups as
        ``group: a, b;``, comments removed, routes kept — with RFC 2047 names decoded (imaptest search-addresses)."""
        return [A.display(A.parse(f.unfolded().decode("utf-8", "surrogateescape")))
                for f in self.fields().get_all(name)]

    def body_text(self) -> str:
        """The text of every leaf part (nested messages included), decoded (RFC 2045 §6, charset)."""
        return "\n".join(mime.part_text(p) for p in mime.leaves(self.msg.tree))


def _decode(v: object) -> str:
    s = str(v)
    try:
        return str(email.header.make_header(email.header.decode_header(s)))
    except (ValueError, LookupError, UnicodeError):
        return s


Pred = Callable[[Context], bool]


class _InSet:
    """A sequence set as a predicate: merged into ranges once per search (``*`` is fixed for its run), then a
    binary search per message — a set of 100,000 pieces costs no more per message than one."""

    def __init__(self, s: SeqSet) -> None:
        self.s = s
        self.top = -1
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, n: int, top: int) -> bool:
        if top != self.top:
            self.top, self.ranges = top, merged(self.s, top)
        return in_ranges(self.ranges, n)


def _sent_date(c: Context) -> datetime.date | None:
    v = c.parsed().get("date")
    if v is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(v)).date()
    except (TypeError, ValueError, IndexError):
        return None


def _internal_date(c: Context) -> datetime.date:
    return datetime.datetime.fromtimestamp(c.msg.msg.internaldate, datetime.UTC).date()


def _has(text: str, needle: str) -> bool:
    return needle.casefold() in text.casefold()


_FLAG_KEYS = {
    "ANSWERED": (F.ANSWERED, True), "UNANSWERED": (F.ANSWERED, False), "DELETED": (F.DELETED, True),
    "UNDELETED": (F.DELETED, False), "DRAFT": (F.DRAFT, True), "UNDRAFT": (F.DRAFT, False),
    "FLAGGED": (F.FLAGGED, True), "UNFLAGGED": (F.FLAGGED, False), "SEEN": (F.SEEN, True),
    "UNSEEN": (F.SEEN, False),
}
_ADDR_KEYS = ("BCC", "CC", "FROM", "TO")


class Parser:
    def __init__(self, toks: list[Token], depth: int = 0, root: Parser | None = None) -> None:
        self.toks = toks
        self.i = 0
        self.depth = depth
        self.root = root or self
        self.modseq_used = False  # RFC 7162 §3.1.5: the response then carries the highest MODSEQ found

    def nested(self) -> Pred:
        """A key inside NOT or OR: bounded, so a chain of 100,000 NOTs is a syntax error, not a RecursionError."""
        if self.depth >= MAX_DEPTH:
            raise ParseError("search keys nested too deeply")
        self.depth += 1
        try:
            return self.key()
        finally:
            self.depth -= 1

    def next(self, what: str = "search key") -> Token:
        if self.i >= len(self.toks):
            raise ParseError(f"missing {what}")
        t = self.toks[self.i]
        self.i += 1
        return t

    def all(self) -> Pred:
        preds = []
        while self.i < len(self.toks):
            preds.append(self.key())
        if not preds:
            raise ParseError("missing search key")
        return lambda c: all(p(c) for p in preds)

    def key(self) -> Pred:  # noqa: C901 - one branch per RFC 3501 §6.4.4 key reads best as a flat list
        t = self.next()
        if isinstance(t, list):
            if self.depth >= MAX_DEPTH:
                raise ParseError("search keys nested too deeply")
            return Parser(t, self.depth + 1, self.root).all()
        if not isinstance(t, Atom):
            raise ParseError("expected a search key")
        k = t.upper()
        if is_sequence_set(t):
            seqs = _InSet(parse_seqset(t))
            return lambda c: seqs(c.seq, c.max_seq)
        if k == "ALL":
            return lambda c: True
        if k in _FLAG_KEYS:
            flag, on = _FLAG_KEYS[k]
            return lambda c: (flag in c.flags) == on
        if k == "NEW":
            return lambda c: c.recent and F.SEEN not in c.flags
        if k == "OLD":
            return lambda c: not c.recent
        if k == "RECENT":
            return lambda c: c.recent
        if k in ("KEYWORD", "UNKEYWORD"):
            kw = astring(self.next("keyword")).lower()
            on = k == "KEYWORD"
            return lambda c: any(f.lower() == kw for f in c.flags) == on
        if k == "SUBJECT":
            needle = astring(self.next("string"))
            return lambda c: any(_has(v, needle) for v in c.header(k))
        if k in _ADDR_KEYS:  # RFC 3501 §6.4.4 BCC/CC/FROM/TO: the address as the envelope has it
            needle = astring(self.next("string"))
            return lambda c: any(_has(v, needle) for v in c.addresses(k))
        if k == "HEADER":
            name = astring(self.next("header name"))
            needle = astring(self.next("string"))
            return lambda c: any(_has(v, needle) for v in c.header(name))
        if k == "BODY":
            needle = astring(self.next("string"))
            return lambda c: _has(c.body_text(), needle)
        if k == "TEXT":
            needle = astring(self.next("string"))
            return lambda c: (any(_has(f"{n}: {_decode(v)}", needle) for n, v in c.parsed().items())
                              or _has(c.body_text(), needle))
        if k in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
            d = date(self.next("date"))
            get: Callable[[Context], datetime.date | None] = _sent_date if k.startswith("SENT") else _internal_date
            op = k.removeprefix("SENT")
            if op == "BEFORE":
                return lambda c: (x := get(c)) is not None and x < d
            if op == "ON":
                return lambda c: (x := get(c)) is not None and x == d
            return lambda c: (x := get(c)) is not None and x >= d
        if k in ("LARGER", "SMALLER"):
            n = number(self.next("size"))
            return (lambda c: c.msg.msg.size > n) if k == "LARGER" else (lambda c: c.msg.msg.size < n)
        if k == "UID":
            uids = _InSet(parse_seqset(self.next("UID set")))
            return lambda c: uids(c.msg.msg.uid, c.max_uid)
        if k == "MODSEQ":  # RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] mod-sequence-valzer
            t = self.next("mod-sequence")
            if isinstance(t, bytes):  # entry-name "/flags/…" and entry-type: per-flag modseqs are not kept
                entry_type = self.next("entry type")
                if not isinstance(entry_type, Atom) or entry_type.lower() not in ("all", "shared", "priv"):
                    raise ParseError("MODSEQ entry type is all, shared or priv")
                t = self.next("mod-sequence")
            n = number(t, "mod-sequence")
            self.root.modseq_used = True
            return lambda c: c.msg.msg.modseq >= n
        if k == "NOT":
            p = self.nested()
            return lambda c: not p(c)
        if k == "OR":
            a, b = self.nested(), self.nested()
            return lambda c: a(c) or b(c)
        if k in search_ext.KEYS:  # RFC 8474 §6, RFC 8514 §4.2 (search_ext.py)
            return search_ext.KEYS[k](self)
        raise ParseError(f"unknown search key {t[:30]!r}")


def split_charset(toks: list[Token]) -> tuple[str | None, list[Token]]:
    """``CHARSET x`` may lead (RFC 3501 §6.4.4); it is checked before the keys are parsed, so an unknown charset
    gets NO [BADCHARSET] even when its strings are not UTF-8."""
    if toks and isinstance(toks[0], Atom) and toks[0].upper() == "CHARSET":
        if len(toks) < 2:
            raise ParseError("missing charset")
        try:
            charset = astring(toks[1], "charset").upper()
        except ParseError:
            charset = "?"
        return charset, toks[2:]
    return None, toks


def parse(toks: list[Token]) -> tuple[str | None, Pred]:
    """Returns (charset, predicate)."""
    charset, rest = split_charset(toks)
    return charset, Parser(rest).all()


# ---------------------------------------------------------------------------- ESEARCH, RFC 4731

RETURN_OPTIONS = ("MIN", "MAX", "COUNT", "ALL")  # RFC 4731 §3.1; SAVE (RFC 5182) is not offered


def split_return(toks: list[Token]) -> tuple[list[str] | None, list[Token]]:
    """``RETURN (options)`` may lead (RFC 4731 §3.1, before CHARSET); ``RETURN ()`` means ``RETURN (ALL)``.
    None: no RETURN, the answer is the plain ``* SEARCH`` of RFC 3501."""
    if not (toks and isinstance(toks[0], Atom) and toks[0].upper() == "RETURN"):
        return None, toks
    if len(toks) < 2 or not isinstance(toks[1], list):
        raise ParseError("usage: SEARCH RETURN (options) criteria")
    opts = []
    for t in toks[1]:
        if not isinstance(t, Atom) or t.upper() not in RETURN_OPTIONS:
            raise ParseError(f"unknown SEARCH return option {str(t)[:20]!r}")  # RFC 4731 §3.1: BAD
        opts.append(t.upper())
    return (opts or ["ALL"]), toks[2:]


def compact_set(numbers: list[int]) -> str:
    """Ascending numbers → the shortest RFC 3501 §9 sequence-set naming them (``1:3,7,9:10``)."""
    out: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[i]) if i == j else f"{numbers[i]}:{numbers[j]}")
        i = j + 1
    return ",".join(out)


def esearch(tag: str, uid: bool, hits: list[int], opts: list[str]) -> str:
    """RFC 4731 §3.1 ``* ESEARCH (TAG "t") [UID] …``: MIN, MAX and ALL left out when nothing matched, COUNT never."""
    out = [f'* ESEARCH (TAG "{tag}")'] + (["UID"] if uid else [])
    ordered = sorted(hits)
    values = {"COUNT": str(len(ordered))}
    if ordered:
        values |= {"MIN": str(ordered[0]), "MAX": str(ordered[-1]), "ALL": compact_set(ordered)}
    out += [f"{opt} {values[opt]}" for opt in RETURN_OPTIONS if opt in opts and opt in values]
    return " ".join(out)
