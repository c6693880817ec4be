"""FETCH (RFC 3501 §6.4.5, §7.4.2): data items parsed once per command, rendered per message off the event loop.

Rendering is pure: it takes the message's index entry and, only when an item needs them, its bytes (CRLF) and
MIME structure (courrier/mailbox/mime.py). ENVELOPE and BODYSTRUCTURE send raw header values, as the RFC asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from courrier.access.imap import binary as BI
from courrier.access.imap import objectid as OI
from courrier.access.imap import response as W
from courrier.access.imap import savedate as SD
from courrier.access.imap.parser import Atom, ParseError, Token, format_date_time
from courrier.mail import addresses as A
from courrier.mail import headers as H
from courrier.mailbox import mime
from courrier.mailbox.api import Msg, Stream

# RFC 3501 §9 fetch-att / section / section-partial; part numbers are nz-numbers joined by "."
_SECTION = re.compile(r"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\]"
                      r"(?:<([0-9]{1,10})(?:\.([0-9]{1,10}))?>)?$", re.IGNORECASE)
_SPECS = r"HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME"
_SPEC = re.compile(rf"^(?:((?:[1-9][0-9]{{0,8}}\.)*[1-9][0-9]{{0,8}})(?:\.({_SPECS}))?|({_SPECS}))?"
                   r"(?:\s+\((.*)\))?$", re.IGNORECASE)
MAX_ITEMS = 100  # fetch attributes in one command (real clients ask for a dozen)
MAX_SECTION_PARTS = 100  # numbers in a section's part path (1.2.3…): deeper than any MIME tree we parse (mime.MAX_DEPTH)
SIMPLE = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE", "UID",
          "RFC822", "RFC822.HEADER", "RFC822.TEXT",
          "MODSEQ",  # RFC 7162 §3.1.4
          "EMAILID", "THREADID", "SAVEDATE"}  # RFC 8474 §7 (objectid.py), RFC 8514 §4.3 (savedate.py)
MISSING_MAILBOX = "MISSING_MAILBOX"  # Dovecot's placeholders for an address without a local part / a host
MISSING_DOMAIN = "MISSING_DOMAIN"
MACROS = {"ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
          "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
          "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]}


@dataclass(frozen=True)
class Item:
    name: str  # FLAGS, UID, …, or SECTION
    label: bytes = b""  # the response label for sections
    part: tuple[int, ...] = ()
    spec: str = ""  # "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()
    partial: tuple[int, int | None] | None = None
    peek: bool = False

    @property
    def needs_data(self) -> bool:
        return self.name in ("ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
                             "SECTION")

    @property
    def sets_seen(self) -> bool:
        """RFC 3501 §6.4.5: BODY[...] and RFC822/RFC822.TEXT set \\Seen; .PEEK and RFC822.HEADER do not."""
        return (self.name == "SECTION" and not self.peek) or self.name in ("RFC822", "RFC822.TEXT")


def parse_items(tok: Token) -> list[Item]:
    toks = tok if isinstance(tok, list) else [tok]
    if not toks:
        raise ParseError("empty fetch attribute list")
    out: list[Item] = []
    for t in toks:
        if not isinstance(t, Atom):
            raise ParseError("bad fetch attribute")
        up = t.upper()
        if up in MACROS and not isinstance(tok, list):
            out += [Item(n) for n in MACROS[up]]
        elif up in SIMPLE:
            out.append(Item(up))
        else:
            out.append(_section(str(t)))
    out = list(dict.fromkeys(out))  # the same item twice is answered once
    if len(out) > MAX_ITEMS:
        raise ParseError(f"more than {MAX_ITEMS} fetch attributes")
    return out


def _section(t: str) -> Item:
    m = _SECTION.match(t)
    if not m:
        raise ParseError(f"unknown fetch attribute {t[:40]!r}")
    if m.group(1).upper() in BI.SPECS:
        return _binary(m)
    s = _SPEC.match(m.group(2).strip())
    if not s:
        raise ParseError(f"bad section {m.group(2)[:40]!r}")
    if s.group(1) and s.group(1).count(".") >= MAX_SECTION_PARTS:
        raise ParseError("section part path too long")
    part = tuple(int(x) for x in s.group(1).split(".")) if s.group(1) else ()
    spec = (s.group(2) or s.group(3) or "").upper()
    fields: tuple[str, ...] = ()
    if spec.startswith("HEADER.FIELDS"):
        if s.group(4) is None or not s.group(4).split():
            raise ParseError("HEADER.FIELDS needs a list of field names")
        fields = tuple(x.strip('"') for x in s.group(4).split())
    elif s.group(4) is not None:
        raise ParseError("field list only after HEADER.FIELDS")
    if spec == "MIME" and not part:
        raise ParseError("MIME needs a part number")
    partial = None
    if m.group(3) is not None:
        if m.group(4) is not None and int(m.group(4)) == 0:
            raise ParseError("partial length must be non-zero")  # RFC 3501 §9 section-partial: nz-number
        partial = (int(m.group(3)), int(m.group(4)) if m.group(4) is not None else None)
    sect = ".".join(map(str, part))
    if spec:
        sect = f"{sect}.{spec}" if sect else spec
    if fields:
        sect += " (" + " ".join(f.upper() for f in fields) + ")"
    label = f"BODY[{sect}]" + (f"<{partial[0]}>" if partial else "")
    return Item("SECTION", label.encode(), part, spec, fields, partial, m.group(1).upper() == "BODY.PEEK")


_PART = re.compile(rf"^(?:[1-9][0-9]{{0,8}}\.){{0,{MAX_SECTION_PARTS - 1}}}[1-9][0-9]{{0,8}}$")


def _binary(m: re.Match[str]) -> Item:
    """RFC 3516 §4.1 ``BINARY[part]<partial>``, ``BINARY.PEEK[…]``, ``BINARY.SIZE[part]``: section-binary holds part
    numbers only; rendered by binary.py."""
    what, sect = m.group(1).upper(), m.group(2).strip()
    if sect and not _PART.match(sect):
        raise ParseError(f"bad binary section {sect[:40]!r}")
    partial = None
    if m.group(3) is not None:
        if what == "BINARY.SIZE" or (m.group(4) is not None and int(m.group(4)) == 0):
            raise ParseError("bad partial in binary section")
        partial = (int(m.group(3)), int(m.group(4)) if m.group(4) is not None else None)
    part = tuple(int(x) for x in sect.split(".")) if sect else ()
    label = f"{what.removesuffix('.PEEK')}[{sect}]" + (f"<{partial[0]}>" if partial else "")
    return Item("SECTION", label.encode(), part, what, (), partial, what != "BINARY")


# ---------------------------------------------------------------------------- rendering


STREAM_ABOVE = 1 << 20  # octets: a larger message's BODY[], BINARY[] and RFC822 are sent from its Stream in pieces


@dataclass(frozen=True)
class Piece:
    """Octets of the message sent from its stream, not held: ``length`` octets from ``start``."""

    stream: Stream
    start: int
    length: int | None

    def size(self) -> int:
        return self.stream.length(self.start, self.length)

    def chunks(self) -> Iterator[bytes]:
        return self.stream.slice(self.start, self.length)


Parts = list[bytes | Piece]  # a response with pieces to send from a stream (cmd_message.fetch writes them)


class Message:
    """One message being rendered: its bytes and MIME tree are computed on first use. With ``opener``, a message
    over STREAM_ABOVE whose bytes no other item has needed yet is sent whole from a Stream (``Piece``)."""

    def __init__(self, msg: Msg, load: Callable[[], bytes | None],
                 load_header: Callable[[], bytes | None] | None = None,
                 opener: Callable[[], Stream | None] | None = None) -> None:
        self.msg = msg
        self._load = load
        self._load_header = load_header
        self._opener = opener
        self._data: bytes | None = None
        self._header: bytes | None = None
        self._tree: mime.Part | None = None
        self._stream: Stream | None = None
        self.missing = False

    def stream(self) -> Stream | None:
        """The message's Stream when it is to be sent in pieces (opened once); None: use ``data``."""
        if self._stream is None and self._opener is not None and self._data is None and not self.missing \
                and self.msg.size > STREAM_ABOVE:
            self._stream = self._opener()
            if self._stream is None:
                self.missing = True
        return self._stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    @property
    def header(self) -> bytes:
        """The header section (CRLF): from the index's cache when there is one, so no file is opened."""
        if self._header is None:
            if self._data is None and self._load_header is not None:
                h = self._load_header()
                if h is None:
                    self.missing = True
                    h = b""
                self._header = h
            else:
                self._header = self.data[:self.header_end()]
        return self._header

    @property
    def data(self) -> bytes:
        if self._data is None:
            d = self._load()
            if d is None:
                self.missing = True
                d = b""
            self._data = d
        return self._data

    @property
    def tree(self) -> mime.Part:
        if self._tree is None:
            self._tree = mime.parse(self.data)
        return self._tree

    def header_end(self) -> int:
        d = self.data
        if d.startswith(b"\r\n"):
            return 2
        i = d.find(b"\r\n\r\n")
        return len(d) if i < 0 else i + 4


class ResponseTooLarge(Exception):
    """One message's FETCH response would pass the caller's limit (items that each copy the message)."""


def _piece(m: Message, it: Item) -> Piece | None:
    """The whole-message items (RFC822, BODY[]<o.n>, BINARY[]<o.n>) of a large message, from its stream."""
    whole = it.name == "RFC822" or (it.name == "SECTION" and not it.part and it.spec in ("", "BINARY", "BINARY.PEEK"))
    if not whole:
        return None
    st = m.stream()
    if st is None:
        return None
    start, length = it.partial if it.partial is not None else (0, None)
    return Piece(st, start, length)


def render(m: Message, seq: int, items: list[Item], flags: frozenset[str], with_uid: bool,
           limit: int | None = None) -> bytes | Parts:
    """One FETCH response; ResponseTooLarge once its items pass ``limit`` octets (checked after each item, so
    at most one item more is ever held). ``Parts`` when a large message's octets are to be sent from its stream."""
    out: list[bytes | tuple[bytes, Piece]] = []
    if with_uid and not any(i.name == "UID" for i in items):
        out.append(b"UID %d" % m.msg.uid)  # RFC 3501 §6.4.8: UID FETCH always returns UID
    size = 0
    for it in items:
        if limit is not None and out and isinstance(out[-1], bytes):
            size += len(out[-1])
            if size > limit:
                raise ResponseTooLarge(size)
        n = it.name
        piece = _piece(m, it)
        if piece is not None:
            label = b"RFC822" if n == "RFC822" else it.label
            if it.spec in ("BINARY", "BINARY.PEEK") and any(b"\x00" in c for c in piece.chunks()):
                out.append((label + b" ~{%d}\r\n" % piece.size(), piece))  # RFC 3516 §4.2 literal8
            else:
                out.append((label + b" {%d}\r\n" % piece.size(), piece))
            continue
        if it.spec == "BINARY.SIZE" and not it.part and (st := m.stream()) is not None:  # RFC 3516 §4.2: as stored
            out.append(it.label + b" %d" % st.size)
            continue
        if n == "FLAGS":
            out.append(b"FLAGS " + W.flags(flags))
        elif n == "UID":
            out.append(b"UID %d" % m.msg.uid)
        elif n == "MODSEQ":
            out.append(b"MODSEQ (%d)" % m.msg.modseq)  # RFC 7162 §3.1.4.1 permsg-modsequence
        elif n == "INTERNALDATE":
            out.append(b'INTERNALDATE "' + format_date_time(m.msg.internaldate).encode() + b'"')
        elif n in ("EMAILID", "THREADID"):  # RFC 8474 §7
            out.append(OI.fetch_item(m, n))
        elif n == "SAVEDATE":  # RFC 8514 §4.3
            out.append(b'SAVEDATE "' + format_date_time(SD.of(m.msg)).encode() + b'"')
        elif n == "RFC822.SIZE":
            out.append(b"RFC822.SIZE %d" % m.msg.size)
        elif n == "ENVELOPE":
            out.append(b"ENVELOPE " + envelope_of_header(m.header))
        elif n == "BODY":
            out.append(b"BODY " + bodystructure(m.tree, ext=False))
        elif n == "BODYSTRUCTURE":
            out.append(b"BODYSTRUCTURE " + bodystructure(m.tree, ext=True))
        elif n == "RFC822":
            out.append(b"RFC822 " + _lit(m.data))
        elif n == "RFC822.HEADER":
            out.append(b"RFC822.HEADER " + _lit(m.header))
        elif n == "RFC822.TEXT":
            out.append(b"RFC822.TEXT " + _lit(m.data[m.header_end():]))
        elif it.spec in BI.SPECS:  # RFC 3516 (binary.py)
            out.append(BI.render(m, it))
        else:
            out.append(it.label + b" " + _section_data(m, it))
    if limit is not None and out and isinstance(out[-1], bytes) and size + len(out[-1]) > limit:
        raise ResponseTooLarge(size)
    head = b"* %d FETCH (" % seq
    if all(isinstance(o, bytes) for o in out):
        return head + b" ".join(out) + b")\r\n"  # type: ignore[arg-type]
    parts: Parts = []
    text = head
    for i, o in enumerate(out):
        sep = b" " if i else b""
        if isinstance(o, bytes):
            text += sep + o
        else:
            parts += [text + sep + o[0], o[1]]
            text = b""
    parts.append(text + b")\r\n")
    return parts


def _lit(b: bytes) -> bytes:
    return b"{%d}\r\n" % len(b) + b


def _section_data(m: Message, it: Item) -> bytes:
    data = section_bytes(m, it)
    if data is None:
        return b"NIL"
    if it.partial is not None:
        start, length = it.partial
        data = data[start:] if length is None else data[start:start + length]
    return _lit(data)


def _select_fields(block: bytes, names: tuple[str, ...], keep: bool) -> bytes:
    wanted = {n.lower() for n in names}
    out = []
    for raw in re.split(rb"(?<=\r\n)(?![ \t])", block):
        if raw in (b"\r\n", b""):
            continue
        name = raw.split(b":", 1)[0].strip().decode("latin-1").lower()
        if (name in wanted) == keep:
            out.append(raw)
    return b"".join(out) + b"\r\n"


def section_bytes(m: Message, it: Item) -> bytes | None:
    """RFC 3501 §6.4.5 section → octets; a part that does not exist is empty, as Dovecot answers."""
    if not it.part:
        if it.spec == "":
            return m.data
        if it.spec == "TEXT":
            return m.data[m.header_end():]
        if it.spec in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            header = m.header
            return header if it.spec == "HEADER" else _select_fields(header, it.fields, it.spec == "HEADER.FIELDS")
    part = resolve(m.tree, it.part)
    if part is None:
        return b""
    if it.spec == "":
        return part.body
    if it.spec == "MIME":
        return part.header
    target = part if not it.part else part.message  # HEADER/TEXT of a part apply to message/rfc822 parts only
    if target is None:
        return b""
    if it.spec == "TEXT":
        return target.body
    if it.spec == "HEADER":
        return target.header
    return _select_fields(target.header, it.fields, it.spec == "HEADER.FIELDS")


def resolve(root: mime.Part, nums: tuple[int, ...]) -> mime.Part | None:
    """Part numbers (RFC 3501 §6.4.5): parts of a multipart count from 1; a single part is part 1 of its message;
    numbers after a message/rfc822 part address the encapsulated message."""
    cur = root
    for i, n in enumerate(nums):
        if i > 0 and cur.message is not None:
            cur = cur.message
        if cur.children:
            if not 1 <= n <= len(cur.children):
                return None
            cur = cur.children[n - 1]
        elif cur.is_multipart or n != 1:
            return None
    return cur


# ---------------------------------------------------------------------------- ENVELOPE / BODYSTRUCTURE


def _addresses(value: bytes | None) -> bytes:
    """RFC 3501 §7.4.2 address list: ((name adl mailbox host) …) or NIL; a group is framed by (NIL NIL name NIL)
    and (NIL NIL NIL NIL). The address-list syntax is read by ``courrier.mail.addresses`` (routes kept as adl,
    comments removed). A mailbox without a local part or a host is sent with Dovecot's placeholders: a NIL host
    would announce a group."""
    if value is None:
        return b"NIL"
    return _address_list(A.parse(value.decode("utf-8", "surrogateescape")))


def _address_list(items: list[A.Address]) -> bytes:
    out = []
    for a in items:
        if isinstance(a, A.Group):
            out.append(b"(NIL NIL " + _enc(a.name) + b" NIL)")
            out += [_mailbox(m) for m in a.members]
            out.append(b"(NIL NIL NIL NIL)")
        else:
            out.append(_mailbox(a))
    return b"(" + b"".join(out) + b")" if out else b"NIL"  # RFC 3501 §9: "(" 1*address ")", no spaces


def _mailbox(m: A.Mailbox) -> bytes:
    return b"(" + b" ".join([_enc(m.name or ""), _enc(m.route or ""), _enc(m.local or MISSING_MAILBOX),
                             _enc(m.domain or MISSING_DOMAIN)]) + b")"


def _enc(s: str) -> bytes:
    return W.nstring(s.encode("utf-8", "surrogateescape")) if s else b"NIL"


def _field_addresses(header: H.Header, name: str) -> list[A.Address]:
    """Every address of every ``name`` field, in order: a second From is shown, not hidden (as Dovecot does)."""
    out: list[A.Address] = []
    for f in header.get_all(name):
        out += A.parse(f.unfolded().decode("utf-8", "surrogateescape"))
    return out


def _first(header: H.Header, name: str) -> bytes | None:
    f = header.get(name)
    return None if f is None else f.unfolded()


def envelope(p: mime.Part) -> bytes:
    """RFC 3501 §7.4.2 ENVELOPE of a message or of an encapsulated message/rfc822 part."""
    return envelope_of_header(p.header)


def envelope_of_header(header: bytes) -> bytes:
    """ENVELOPE from a header section, its fields read by the program's one header reader
    (``courrier.mail.headers``): it shows the fields submission checked, an obsolete ``From :`` included."""
    h = H.read_header(header)
    frm = _field_addresses(h, "from")
    sender = _field_addresses(h, "sender") or frm  # RFC 3501 §7.4.2: absent or empty → the From value
    reply_to = _field_addresses(h, "reply-to") or frm
    fields = [
        W.nstring(_first(h, "date")), W.nstring(_first(h, "subject")), _address_list(frm), _address_list(sender),
        _address_list(reply_to), _address_list(_field_addresses(h, "to")), _address_list(_field_addresses(h, "cc")),
        _address_list(_field_addresses(h, "bcc")), W.nstring(_first(h, "in-reply-to")),
        W.nstring(_first(h, "message-id")),
    ]
    return W.plist(fields)


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return W.plist(W.string(k.encode("latin-1")) + b" " + W.string(v.encode("latin-1")) for k, v in params)


def _disposition(p: mime.Part) -> bytes:
    d = p.get("content-disposition")
    if d is None:
        return b"NIL"
    kind, params = mime.parse_params(d)
    return b"(" + W.string(kind.encode("latin-1")) + b" " + _params(params) + b")"


def _lines(body: bytes) -> int:
    """body-fld-lines: line ends in the body (an unterminated last line does not count, as in Dovecot)."""
    return body.count(b"\n")


def bodystructure(p: mime.Part, ext: bool) -> bytes:
    """RFC 3501 §7.4.2 BODY / BODYSTRUCTURE (with extension data when ``ext``)."""
    if p.is_multipart:
        if not p.children:  # a multipart without parts: describe it as an empty text body
            return b'("text" "plain" NIL NIL NIL "7bit" 0 0' + (b" NIL NIL NIL NIL)" if ext else b")")
        out = b"".join(bodystructure(c, ext) for c in p.children) + b" " + W.string(p.subtype)
        if ext:
            others = [(k, v) for k, v in p.params]
            out += b" " + b" ".join([_params(others), _disposition(p), W.nstring(p.get("content-language")),
                                     W.nstring(p.get("content-location"))])
        return b"(" + out + b")"
    body = p.body
    enc = p.get("content-transfer-encoding")
    params = p.params
    if p.maintype == "text" and p.param("charset") is None:
        params = [("charset", "us-ascii"), *params]  # RFC 2045 §5.2 default, made explicit as Dovecot does
    fields = [W.string(p.maintype), W.string(p.subtype), _params(params), W.nstring(p.get("content-id")),
              W.nstring(p.get("content-description")), W.string(enc.strip() if enc else b"7bit"),
              b"%d" % len(body)]
    if p.ctype == "message/rfc822" and p.message is not None:
        fields += [envelope(p.message), bodystructure(p.message, ext), b"%d" % _lines(body)]
    elif p.maintype == "text":
        fields.append(b"%d" % _lines(body))
    if ext:
        fields += [W.nstring(p.get("content-md5")), _disposition(p), W.nstring(p.get("content-language")),
                   W.nstring(p.get("content-location"))]
    return W.plist(fields)
