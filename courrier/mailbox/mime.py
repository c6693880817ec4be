"""MIME structure with byte offsets (RFC 2045/2046/5322), for IMAP's BODY[section] and BODYSTRUCTURE.

The stdlib ``email`` parser rebuilds messages and forgets where each part starts, but IMAP must return exact octets
of any part (RFC 3501 §6.4.5). This parser only finds boundaries: each :class:`Part` knows where its header and body
are in the original bytes (CRLF line endings), and header values are kept raw (bytes, unfolded), as ENVELOPE and
BODYSTRUCTURE send them (RFC 3501 §7.4.2).

It is also the bounded walker of stored mail (issue 11 item 11): nesting stops at MAX_DEPTH (deeper entities are
opaque bodies) and a message yields at most MAX_PARTS parts, so neither 1,000 nested multiparts nor a million empty
parts can exhaust the stack or the memory — the stdlib parser itself recurses once per level and raises
RecursionError near 1,000. :func:`walk` visits the tree without recursion; :func:`decode_body` and
:func:`decode_text` undo the transfer encoding and the charset without ever raising (unknown charsets fall back to
UTF-8, then latin-1, which keeps every byte). IMAP SEARCH, FETCH and BODYSTRUCTURE use these; so may any reader of
stored mail that must survive hostile messages.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_DEPTH = 20  # nested multiparts / message/rfc822 beyond this are treated as opaque bodies
MAX_PARTS = 10_000  # entities in one message; the parts after it are not split out (Dovecot bounds this too)
# octets of an entity's header read for its fields (Postfix keeps 100 KiB, header_size_limit): the fields of a
# 25 MiB header of 4 million lines would cost seconds of CPU for a structure no real message has
MAX_HEADER_BYTES = 256 << 10
MAX_FIELDS = 100_000  # header fields read in one message, all parts together (2,000 parts × 2,000 fields: seconds)
_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def parse_header(block: bytes, limit: int = MAX_FIELDS) -> list[tuple[str, bytes]]:
    """Header block → [(lower-case name, unfolded raw value)], in order; junk lines are skipped. Only the first
    MAX_HEADER_BYTES and ``limit`` fields are read (the octets themselves are served whole by BODY[HEADER])."""
    out: list[tuple[str, bytes]] = []
    if limit <= 0:
        return out
    for line in re.split(rb"\r?\n(?![ \t])", block[:MAX_HEADER_BYTES]):
        m = _FIELD.match(line)
        if not m:
            continue
        if len(out) >= limit:
            break
        value = re.sub(rb"\r?\n", b"", line[m.end():]).strip(b" \t")
        out.append((m.group(1).decode("ascii").lower(), value))
    return out


def parse_params(value: bytes) -> tuple[str, list[tuple[str, str]]]:
    """``type/sub; a=b; c="d"`` → ("type/sub", [("a","b"), ("c","d")]); latin-1 keeps every byte."""
    text = value.decode("latin-1")
    items, buf, quoted, esc = [], "", False, False
    for ch in text:
        if esc:
            buf += ch
            esc = False
        elif ch == "\\" and quoted:
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            items.append(buf)
            buf = ""
        else:
            buf += ch
    items.append(buf)
    head = items[0].strip()
    params = []
    for it in items[1:]:
        k, sep, v = it.partition("=")
        if sep and k.strip():
            params.append((k.strip().lower(), v.strip()))
    return head, params


@dataclass
class Part:
    data: bytes
    start: int
    body_start: int
    end: int
    fields: list[tuple[str, bytes]]
    ctype: str = "text/plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the encapsulated message of a message/rfc822 part

    @property
    def header(self) -> bytes:
        return self.data[self.start:self.body_start]

    @property
    def body(self) -> bytes:
        return self.data[self.body_start:self.end]

    def get(self, name: str) -> bytes | None:
        for k, v in self.fields:
            if k == name:
                return v
        return None

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return None

    @property
    def maintype(self) -> str:
        return self.ctype.partition("/")[0]

    @property
    def subtype(self) -> str:
        return self.ctype.partition("/")[2]

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"


def parse(data: bytes, start: int = 0, end: int | None = None, default: str = "text/plain", depth: int = 0) -> Part:
    """Parses the entity in ``data[start:end]`` (a message or a body part), bounded by MAX_DEPTH and MAX_PARTS."""
    return _parse(data, start, len(data) if end is None else end, default, depth, [MAX_PARTS - 1, MAX_FIELDS])


def _parse(data: bytes, start: int, end: int, default: str, depth: int, budget: list[int]) -> Part:
    """One entity; ``budget`` holds how many more entities and header fields the whole message may still have."""
    if data.startswith(b"\r\n", start):
        body_start = start + 2  # no header at all
    else:
        i = data.find(b"\r\n\r\n", start, end)
        body_start = end if i < 0 else i + 4
    part = Part(data, start, body_start, end, parse_header(data[start:body_start], budget[1]))
    budget[1] -= len(part.fields)
    ct = part.get("content-type")
    ctype, params = parse_params(ct) if ct else ("", [])
    ctype = ctype.lower()
    if "/" not in ctype or " " in ctype:
        ctype, params = default, ([("charset", "us-ascii")] if default == "text/plain" else [])
    part.ctype, part.params = ctype, params
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return part
    if part.is_multipart:
        boundary = part.param("boundary")
        if boundary:
            child_default = "message/rfc822" if part.subtype == "digest" else "text/plain"
            for a, b in _split(data, body_start, end, boundary.encode("latin-1")):
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                part.children.append(_parse(data, a, b, child_default, depth + 1, budget))
    elif ctype == "message/rfc822":
        budget[0] -= 1
        part.message = _parse(data, body_start, end, "text/plain", depth + 1, budget)
    return part


def walk(root: Part) -> Iterator[Part]:
    """Every entity of the tree in document order (a message/rfc822 part, then its message), without recursion."""
    stack = [root]
    while stack:
        p = stack.pop()
        yield p
        if p.message is not None:
            stack.append(p.message)
        stack.extend(reversed(p.children))


def leaves(root: Part) -> Iterator[Part]:
    """The entities that hold content: neither split into parts nor encapsulating a parsed message. A multipart
    left unsplit (no boundary, or past MAX_DEPTH) is a leaf: its body is kept, opaque."""
    for p in walk(root):
        if not p.children and p.message is None:
            yield p


def decode_body(p: Part) -> bytes:
    """The body with its Content-Transfer-Encoding undone (RFC 2045 §6); an unknown or broken encoding gives the
    octets as stored."""
    body = p.body
    cte = (p.get("content-transfer-encoding") or b"").strip().lower()
    if cte == b"base64":
        clean = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
        clean = clean[:len(clean) - len(clean) % 4] if len(clean) % 4 == 1 else clean + b"=" * (-len(clean) % 4)
        try:
            return binascii.a2b_base64(clean)
        except binascii.Error:
            return body
    if cte == b"quoted-printable":
        return binascii.a2b_qp(body)
    return body


def decode_text(data: bytes, charset: str | None) -> str:
    """Octets in a declared charset → text, never raising: an unknown charset (or none) is read as UTF-8 when
    the octets are valid UTF-8, else as latin-1, which keeps every byte."""
    if charset:
        try:
            name = codecs.lookup(charset.strip().strip('"')).name
            return data.decode(name, "replace")  # a name of a non-text codec (hex, zlib) raises LookupError here
        except (LookupError, ValueError, UnicodeError, TypeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def part_text(p: Part) -> str:
    """A leaf's content as text: text/* through its charset, anything else octet for octet (latin-1)."""
    data = decode_body(p)
    if p.maintype == "text":
        return decode_text(data, p.param("charset"))
    return data.decode("latin-1")


def _split(data: bytes, start: int, end: int, boundary: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each body part between ``--boundary`` lines (RFC 2046 §5.1.1; the CRLF before a
    delimiter belongs to the delimiter), found lazily: the caller stops at MAX_PARTS without the rest being split.

    Delimiters are found by one compiled search (linear, in C): lines that merely begin like the boundary cost
    nothing per line in Python."""
    delim = b"--" + boundary
    rx = re.compile(rb"\r\n(" + re.escape(delim) + rb")(?=\Z|[\r\t -])")

    def delimiters() -> Iterator[int]:
        if data.startswith(delim, start) and data[start + len(delim):start + len(delim) + 1] in (
                b"", b"\r", b"-", b" ", b"\t"):
            yield start
        for m in rx.finditer(data, start):
            if m.end(1) > end:
                return
            yield m.start(1)

    found = delimiters()
    i = next(found, -1)
    while i >= 0:
        if data.startswith(b"--", i + len(delim)):
            break  # close delimiter
        eol = data.find(b"\r\n", i, end)
        if eol < 0:
            break
        part_start = eol + 2
        nxt = next(found, -1)
        while 0 <= nxt < part_start:
            nxt = next(found, -1)
        part_end = (nxt - 2) if nxt >= 0 else end
        yield part_start, max(part_start, part_end)
        i = nxt
