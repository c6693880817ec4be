"""The one header-field reader of the program: which header fields a message has (RFC 5322 §2.2, §3.6.8, §4.5).

Why one reader: when two parts of the program disagree on which fields exist, a sender can show a field to the part
that displays it and hide it from the part that checks it. ``From : Alice <alice@…>`` (a space before the colon) was
skipped by the stdlib parser at submission, so the sender check never saw it, while IMAP's ENVELOPE showed Alice.
Every reader of identity fields — submission's sender check, capture, IMAP ENVELOPE and SEARCH, the web view,
DMARC's From — now asks this module; the stdlib ``email`` package stays for MIME structure only.

The rules:

- A field is ``field-name ":" value``, the name being 1*ftext: printable US-ASCII except ":" (RFC 5322 §3.6.8).
  The obsolete form ``field-name *WSP ":"`` (RFC 5322 §4.5: every obs-* field and obs-optional) is that same field.
- A line that starts with SP or HTAB continues the field before it (folding, RFC 5322 §2.2.3).
- A line ends at CRLF, LF or a lone CR: the stdlib splits lines at all three, so a field that follows a lone CR must
  not be hidden from this reader either.
- A line that is no field — no colon, a name with a space, an 8-bit octet or a control character in it, an empty
  name, or a continuation line before any field — is reported in ``Header.problems`` (with its own continuation
  lines) and skipped; reading goes on, so a field after it is still found.
- The header section ends at the first empty line (RFC 5322 §2.1), or at the end of the data.
- Bounded: at most ``max_size`` octets, ``max_lines`` lines, ``max_line`` octets in one line. Past a bound reading
  stops, the bound is reported as a problem and ``Header.truncated`` is set: a caller decides whether a cut header
  is acceptable (submission refuses it; a mailbox view shows what was read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SIZE = 1 << 20  # octets of header section read at most
MAX_LINES = 20_000  # lines of header section read at most
MAX_LINE = 128 * 1024  # octets in one line at most (RFC 5322 §2.1.1 asks 998; real mail exceeds it)

# RFC 5322 §3.6.8 field-name = 1*ftext, ftext = %d33-57 / %d59-126; §4.5 obsolete fields: name *WSP ":"
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*):")
_EOL = re.compile(rb"\r\n|\r|\n")
_FOLD = re.compile(rb"\r\n|\r|\n")

NO_COLON = "no colon"
BAD_NAME = "field name not printable US-ASCII"
ORPHAN = "continuation line before any field"
TOO_LARGE = "header section too large"
TOO_MANY_LINES = "too many header lines"
LINE_TOO_LONG = "header line too long"


@dataclass(slots=True)  # not frozen: built for every field of every message read, where frozen costs a third more
class Field:
    """One header field as written: ``data[start:end]`` is the whole field, its line breaks included."""

    name: str  # as written, without the WSP of the obsolete form
    value: bytes  # everything after the colon, folding line breaks kept, the final line break left out
    start: int
    end: int
    obsolete: bool = False  # written ``name WSP ":"`` (RFC 5322 §4.5)

    @property
    def key(self) -> str:
        """The name for comparisons: field names are case-insensitive (RFC 5322 §1.2.2)."""
        return self.name.lower()

    def unfolded(self) -> bytes:
        """The value unfolded (RFC 5322 §2.2.3: the line breaks removed) and stripped of surrounding WSP."""
        return _FOLD.sub(b"", self.value).strip(b" \t")

    def text(self) -> str:
        """The unfolded value as text: UTF-8 (RFC 6532), invalid octets replaced."""
        return self.unfolded().decode("utf-8", "replace")

    def raw_text(self) -> str:
        """The value as the stdlib's compat32 keeps it: leading WSP stripped, folding kept, 8-bit octets as
        surrogates (``surrogateescape``), so code written for ``Message.raw_items()`` reads it unchanged."""
        return self.value.decode("utf-8", "surrogateescape").lstrip(" \t")


@dataclass(frozen=True, slots=True)
class Problem:
    """A line that is no header field, or a bound that stopped the reading."""

    line: int  # 1-based line number in the header section
    offset: int
    reason: str
    excerpt: bytes  # the start of the line, at most 80 octets

    def describe(self) -> str:
        """One printable line for a log or an SMTP reply."""
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in self.excerpt[:60])
        return f"line {self.line}: {self.reason} ({shown!r})"


@dataclass(frozen=True, slots=True)
class Header:
    fields: tuple[Field, ...]
    problems: tuple[Problem, ...]
    end: int  # offset of the body: after the empty line, or where reading stopped
    truncated: bool = False  # a bound stopped the reading before the end of the header section

    def get_all(self, name: str) -> list[Field]:
        """Every field called ``name`` (case-insensitive), in order."""
        key = name.lower()
        return [f for f in self.fields if f.key == key]

    def get(self, name: str) -> Field | None:
        """The first field called ``name``, or None."""
        key = name.lower()
        return next((f for f in self.fields if f.key == key), None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def index(self) -> dict[str, list[Field]]:
        """Lower-cased name → its fields in order: one pass when many names are read."""
        out: dict[str, list[Field]] = {}
        for f in self.fields:
            out.setdefault(f.key, []).append(f)
        return out


def read_header(data: bytes, *, max_size: int = MAX_SIZE, max_lines: int = MAX_LINES,
                max_line: int = MAX_LINE) -> Header:
    """Splits the header section at the start of ``data`` (a whole message or just its header) into fields."""
    fields: list[Field] = []
    problems: list[Problem] = []
    n = len(data)
    pos = 0
    lineno = 0
    # the field being read: (name, value start, start, obsolete) — or None while skipping a line that is no field
    cur: tuple[str, int, int, bool] | None = None
    cur_end = 0  # end of the current field's last line, its line break excluded
    skipping = False

    def close(end: int) -> None:
        nonlocal cur
        if cur is not None:
            name, vstart, start, obsolete = cur
            fields.append(Field(name, data[vstart:cur_end], start, end, obsolete))
            cur = None

    def stop(reason: str) -> Header:
        close(pos)
        problems.append(Problem(lineno + 1, pos, reason, data[pos:pos + 80]))
        return Header(tuple(fields), tuple(problems), pos, truncated=True)

    while pos < n:
        if pos >= max_size:
            return stop(TOO_LARGE)
        if lineno >= max_lines:
            return stop(TOO_MANY_LINES)
        window = min(n, pos + max_line + 2)
        m = _EOL.search(data, pos, window)
        if m is None:
            if window < n:
                return stop(LINE_TOO_LONG)
            eol, nxt = n, n  # the last line, without a line break
        else:
            eol, nxt = m.start(), m.end()
            if data[eol:nxt] == b"\r" and data[nxt:nxt + 1] == b"\n":
                nxt += 1  # a CRLF cut by the window
        if eol - pos > max_line:
            return stop(LINE_TOO_LONG)
        if eol == pos:  # the empty line that ends the header section (RFC 5322 §2.1)
            close(pos)
            return Header(tuple(fields), tuple(problems), nxt)
        first = data[pos]
        if first in (0x20, 0x09):  # folding (RFC 5322 §2.2.3)
            if cur is not None:
                cur_end = eol
            elif not skipping:
                problems.append(Problem(lineno + 1, pos, ORPHAN, data[pos:min(eol, pos + 80)]))
                skipping = True
        else:
            close(pos)
            f = _FIELD.match(data, pos, eol)
            if f is not None:
                cur = (f.group(1).decode("ascii"), f.end(), pos, bool(f.group(2)))
                cur_end = eol
                skipping = False
            else:
                reason = BAD_NAME if b":" in data[pos:eol] else NO_COLON
                problems.append(Problem(lineno + 1, pos, reason, data[pos:min(eol, pos + 80)]))
                skipping = True
        pos = nxt
        lineno += 1
    close(pos)
    return Header(tuple(fields), tuple(problems), pos)
