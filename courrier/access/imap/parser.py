"""IMAP command syntax (RFC 3501 §9): reading a command with its literals, and tokenizing it.

A command is read as text lines plus literals: a line ending in ``{n}`` (synchronizing: we answer ``+``) or ``{n+}``
(LITERAL+, RFC 7888) is followed by n octets. In the text handed to the tokenizer each literal is replaced by a NUL
byte (NUL is not allowed in IMAP text, RFC 3501 §9 CHAR8) and its octets kept aside, so the tokenizer reads one
buffer. Tokens are :class:`Atom` (str), strings (bytes: quoted or literal) and lists (parenthesized).
Every syntax problem raises :class:`ParseError`, which the session answers with BAD — never a crash: nesting
and the number of tokens are bounded (MAX_NESTING, MAX_TOKENS), so no input makes the parser recurse or grow
without limit.

``[`` is an ATOM-CHAR (RFC 3501 §9: atom-specials hold ``]`` through resp-specials, never ``[``), so
``foo[bar`` is a keyword or a mailbox name like any other atom. Only after a fetch-att name that takes a section
(``BODY[``, ``BODY.PEEK[``, ``BINARY[``…) does ``[`` open a section, read up to its ``]`` with the spaces and
parentheses a header list holds (``BODY[HEADER.FIELDS (From To)]``).
"""

from __future__ import annotations

import bisect
import datetime
import re

LITERAL = re.compile(rb"\{(\d{1,12})(\+?)\}$")
MAX_NUMBER = 4294967295  # RFC 3501 §9 number: unsigned 32-bit
MAX_NESTING = 32  # parenthesized lists inside one another; real clients use 2 or 3 (SEARCH groups, FETCH lists)
MAX_TOKENS = 100_000  # tokens in one command: a long SEARCH or a flag list, never a client's need beyond this
# RFC 3501 §9 fetch-att (and RFC 3516 BINARY): the atoms whose "[" opens a section that may hold spaces and "()"
_SECTION_PREFIXES = frozenset({b"BODY", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE"})
_LONGEST_PREFIX = max(map(len, _SECTION_PREFIXES))  # no copy of a long atom's start at each of its "["


class ParseError(Exception):
    """Bad syntax; the message is the reason sent after BAD."""


class LiteralTooBig(Exception):
    def __init__(self, size: int, sync: bool) -> None:
        super().__init__(size)
        self.size, self.sync = size, sync


class Literal8(bytes):
    """RFC 3516 §4.4 literal8 (``~{n}``, APPEND's binary message): its octets may hold NUL."""


class Atom(str):
    """An atom (or a number, flag, fetch attribute…); strings are bytes, so the two cannot be confused."""


Token = Atom | bytes | list  # list[Token]

_ATOM_STOP = re.compile(rb'[ ()"\x00-\x1f\x7f\[]')  # what ends an atom, and "[" (which may open a section)
_ATOM_END = re.compile(rb'[ ()"\x00-\x1f\x7f]')
_QUOTED_RUN = re.compile(rb'[^"\\\r\n\x00]+')


class Tokenizer:
    def __init__(self, text: bytes, literals: list[bytes]) -> None:
        self.text = text
        self.literals = literals
        self.pos = 0
        self.lit = 0
        self.count = 0

    def tokens(self) -> list[Token]:
        return self._seq(depth=0)

    def _seq(self, depth: int) -> list[Token]:
        """Tokens up to the end (``depth`` 0) or up to the ``)`` closing a list opened ``depth`` levels down."""
        top = depth == 0
        out: list[Token] = []
        t = self.text
        while True:
            if self.pos >= len(t):
                if not top:
                    raise ParseError("missing )")
                return out
            c = t[self.pos:self.pos + 1]
            if c == b" ":
                self.pos += 1
                continue
            if c == b")":
                if top:
                    raise ParseError("unexpected )")
                self.pos += 1
                return out
            self.count += 1
            if self.count > MAX_TOKENS:
                raise ParseError("too many tokens in one command")
            if c == b"(":
                if depth >= MAX_NESTING:
                    raise ParseError("lists nested too deeply")
                self.pos += 1
                out.append(self._seq(depth + 1))
            elif c == b'"':
                out.append(self._quoted())
            elif c == b"\x00":
                if self.lit >= len(self.literals):
                    raise ParseError("NUL in command")
                lit = self.literals[self.lit]
                if b"\x00" in lit and not isinstance(lit, Literal8):
                    raise ParseError("NUL in literal")  # RFC 3501 §9: literal = ... *CHAR8, and CHAR8 excludes NUL
                out.append(self.literals[self.lit])
                self.lit += 1
                self.pos += 1
            else:
                out.append(self._atom())

    def _quoted(self) -> bytes:
        """RFC 3501 §4.3 quoted string: backslash escapes only \\ and \"."""
        t, i = self.text, self.pos + 1
        buf = bytearray()
        while i < len(t):
            m = _QUOTED_RUN.match(t, i)  # the plain octets in one step: a 1 MiB string is not a Python loop
            if m:
                buf += m.group()
                i = m.end()
                if i >= len(t):
                    break
            c = t[i]
            if c == 0x5C:  # backslash
                if i + 1 >= len(t) or t[i + 1] not in (0x5C, 0x22):
                    raise ParseError("bad escape in quoted string")
                buf.append(t[i + 1])
                i += 2
            elif c == 0x22:
                self.pos = i + 1
                return bytes(buf)
            elif c in (0x0D, 0x0A, 0x00):
                raise ParseError("bad character in quoted string")
            else:
                buf.append(c)
                i += 1
        raise ParseError("unterminated quoted string")

    def _atom(self) -> Atom:
        """An atom; the section of a fetch-att (``BODY[HEADER.FIELDS (A B)]``) may hold spaces and parentheses."""
        t, start = self.text, self.pos
        m = _ATOM_STOP.search(t, start)  # each step one search, in C: a 1 MiB atom is not a Python loop
        i = m.start() if m else len(t)
        if i < len(t) and t[i] == 0x5B:  # "[": only the first one of an atom may open a section
            if i - start <= _LONGEST_PREFIX and t[start:i].upper() in _SECTION_PREFIXES:
                j = t.find(b"]", i)
                if j < 0:
                    raise ParseError("missing ]")
                i = j + 1
            m = _ATOM_END.search(t, i)
            i = m.start() if m else len(t)
        if i == start:
            raise ParseError(f"unexpected character {t[i:i + 1]!r}")
        self.pos = i
        try:
            return Atom(t[start:i].decode("utf-8"))
        except UnicodeDecodeError:
            raise ParseError("atom is not UTF-8") from None


def tokenize(text: bytes, literals: list[bytes]) -> list[Token]:
    return Tokenizer(text, literals).tokens()


# ---------------------------------------------------------------------------- argument helpers


def astring(tok: Token, what: str = "string") -> str:
    """RFC 3501 §9 astring (atom, quoted or literal) → str (UTF-8; modified UTF-7 names are ASCII)."""
    if isinstance(tok, Atom):
        return str(tok)
    if isinstance(tok, bytes):
        try:
            return tok.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(f"{what} is not UTF-8") from None
    raise ParseError(f"expected {what}")


def atom(tok: Token, what: str) -> str:
    if not isinstance(tok, Atom):
        raise ParseError(f"expected {what}")
    return str(tok)


def number(tok: Token, what: str = "number") -> int:
    if not isinstance(tok, Atom) or not tok.isascii() or not tok.isdigit() or len(tok) > 10 or int(tok) > MAX_NUMBER:
        raise ParseError(f"expected {what}")
    return int(tok)


def want(args: list[Token], n: int, usage: str) -> None:
    if len(args) != n:
        raise ParseError(f"usage: {usage}")


SeqSet = list[tuple[int | None, int | None]]  # None is "*"
_SEQ = re.compile(r"^([0-9]{1,10}|\*)(?::([0-9]{1,10}|\*))?$")


def sequence_set(tok: Token) -> SeqSet:
    """RFC 3501 §9 sequence-set: ``1,3:5,7:*``."""
    if not isinstance(tok, Atom):
        raise ParseError("expected a sequence set")
    out: SeqSet = []
    for piece in tok.split(","):
        m = _SEQ.match(piece)
        if not m:
            raise ParseError(f"bad sequence set {tok!r}")
        a = None if m.group(1) == "*" else int(m.group(1))
        b = a if m.group(2) is None else (None if m.group(2) == "*" else int(m.group(2)))
        if a == 0 or b == 0:
            raise ParseError("0 is not a valid message number")
        if (a or 0) > MAX_NUMBER or (b or 0) > MAX_NUMBER:
            raise ParseError("message number too large")
        out.append((a, b))
    return out


def merged(sset: SeqSet, top: int) -> list[tuple[int, int]]:
    """The set as sorted, disjoint (lo, hi) ranges, ``*`` being ``top``: ``1:*,1:*,…`` repeated 100,000 times is one
    range, so its cost is paid once, not once per piece and message."""
    ranges = sorted((min(lo, hi), max(lo, hi)) for lo, hi in
                    ((top if a is None else a, top if b is None else b) for a, b in sset))
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def in_ranges(ranges: list[tuple[int, int]], n: int) -> bool:
    i = bisect.bisect_right(ranges, (n, MAX_NUMBER + 1)) - 1
    return i >= 0 and ranges[i][0] <= n <= ranges[i][1]


def is_sequence_set(tok: Token) -> bool:
    return isinstance(tok, Atom) and all(_SEQ.match(p) for p in tok.split(","))


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DATE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
_DATETIME = re.compile(r"^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


def date(tok: Token) -> datetime.date:
    """RFC 3501 §9 date: ``1-Feb-1994`` (atom or quoted)."""
    s = astring(tok, "date")
    m = _DATE.match(s)
    try:
        if not m:
            raise ValueError
        return datetime.date(int(m.group(3)), MONTHS.index(m.group(2).capitalize()) + 1, int(m.group(1)))
    except ValueError:
        raise ParseError(f"bad date {s!r}") from None


def date_time(tok: Token) -> float:
    """RFC 3501 §9 date-time: ``"17-Jul-1996 02:44:25 -0700"`` → epoch seconds."""
    s = astring(tok, "date-time")
    m = _DATETIME.match(s)
    try:
        if not m:
            raise ValueError
        tz = datetime.timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
        if m.group(7) == "-":
            tz = -tz
        dt = datetime.datetime(int(m.group(3)), MONTHS.index(m.group(2).capitalize()) + 1, int(m.group(1)),
                               int(m.group(4)), int(m.group(5)), int(m.group(6)), tzinfo=datetime.timezone(tz))
        return dt.timestamp()
    except ValueError:
        raise ParseError(f"bad date-time {s!r}") from None


def format_date_time(ts: float) -> str:
    """Epoch seconds → RFC 3501 date-time in UTC (INTERNALDATE)."""
    d = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return f"{d.day:02d}-{MONTHS[d.month - 1]}-{d.year:04d} {d:%H:%M:%S} +0000"
