"""MIME → what the index and the API show: addresses, subject, dates, decoded text, attachments and inline parts.

Which header fields a message has is decided by the program's one header reader (``courrier.mail.headers``), the
same that submission and IMAP use; MIME structure is the stdlib ``email`` package's. Indexing (``parse``) runs on
every captured message, so it uses the ``compat32`` policy — several times faster than ``default``, whose header
objects cost more than the rest of the capture path — and decodes what it needs itself (RFC 2047 encoded words,
RFC 2231 file names, QP/base64 bodies in their charset). ``parse_bytes`` (policy ``default``) is for the API's full view of one message. Bad input never
raises out of here: a header that does not parse is read as plain text, a body in
an unknown charset is decoded as UTF-8 when it is valid UTF-8 and as latin-1 (every octet kept) otherwise, and a
MIME structure beyond ``mimebound``'s bounds (nesting, part count) is read as its header section alone with
``Parsed.error`` saying why — a capture server must show exactly the broken mail it was sent, not refuse it.

Part ids are IMAP's (RFC 3501 §6.4.5 section numbers): "1" for a single-part body, "1", "2", "2.1"… in a multipart
tree. They address parts in ``GET /api/v1/message/{ID}/part/{PartID}``.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from html.parser import HTMLParser

from courrier.capture.mimebound import MAX_DEPTH, parse_bounded
from courrier.mail.headers import read_header

SNIPPET_LENGTH = 250
_FIELDS_ATTR = "courrier_fields"  # the header reader's field index, kept on a Message parsed here
_PART_ID = re.compile(rf"^[1-9][0-9]{{0,5}}(?:\.[1-9][0-9]{{0,5}}){{0,{MAX_DEPTH - 1}}}$", re.ASCII)


def message_of(data: bytes) -> Message:
    """The message's tree (policy ``compat32``, as ``parse``: part ids agree), bounded as ``parse_bytes``."""
    return _attach(parse_bounded(data)[0], data)


def part_filename(part: Message) -> str:
    """A part's file name (RFC 2231 and RFC 2047 decoded), else its Content-ID (RFC 2392, without <>) as Mailpit
    names such parts (``storage.AttachmentSummary``); "" when it has neither."""
    return _filename(part) or header_text(part, "Content-ID").strip("<> ")


def parse_bytes(data: bytes) -> EmailMessage:
    """The whole message (policy ``default``), or its header section alone when its MIME structure is beyond the
    bounds of ``mimebound`` (then every part id but "1" is unknown)."""
    return _attach(parse_bounded(data, email.policy.default)[0], data)  # type: ignore[return-value]


@dataclass
class PartInfo:
    part_id: str
    content_type: str
    filename: str
    content_id: str
    size: int  # decoded octets


@dataclass
class Parsed:
    message_id: str = ""
    subject: str = ""
    date: float | None = None
    from_: dict[str, str] = field(default_factory=lambda: {"Name": "", "Address": ""})
    to: list[dict[str, str]] = field(default_factory=list)
    cc: list[dict[str, str]] = field(default_factory=list)
    reply_to: list[dict[str, str]] = field(default_factory=list)
    text: str = ""
    html: str = ""
    attachments: list[PartInfo] = field(default_factory=list)
    inline: list[PartInfo] = field(default_factory=list)
    x_tags: list[str] = field(default_factory=list)
    headers: list[list[str]] = field(default_factory=list)  # [[lower-cased name, decoded value]…], ``header_pairs``
    error: str = ""  # why the message could only be read in part ("" when it parsed whole)

    @property
    def html_text(self) -> str:
        return html_to_text(self.html) if self.html else ""

    def snippet(self) -> str:
        src = self.text if self.text.strip() else self.html_text
        n = SNIPPET_LENGTH * 4  # a window of the text, not all of it (a 100 KB body: split and joined for 250 chars)
        while True:
            s = " ".join(src[:n].split())
            # exact once a separator lies past the snippet: a word cut by the window's end is beyond it
            if n >= len(src) or s.find(" ", SNIPPET_LENGTH) >= 0:
                break
            n *= 4
        return s if len(s) <= SNIPPET_LENGTH else s[:SNIPPET_LENGTH].rstrip() + "..."


# --------------------------------------------------------------------------- headers


def _unraw(v: str) -> str:
    """compat32 keeps raw 8-bit header octets as surrogates: back to text (UTF-8, RFC 6532)."""
    try:
        v.encode("utf-8")
        return v
    except UnicodeEncodeError:
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words → text; the value as is when they do not decode."""
    value = _unraw(value)
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def raw_values(msg: Message, name: str, fields: dict[str, list[str]] | None = None) -> list[str]:
    """The values of every ``name`` field as stored (compat32 would turn 8-bit ones into unknown-8bit Headers).
    ``fields``: ``field_index(data)``, when several fields of one message are read (``parse``). Without it, a message
    parsed here is read through the index ``parse``/``parse_bytes`` attached to it (the program's one header reader);
    any other part (a MIME part) through the stdlib's view of its header."""
    key = name.lower()
    if fields is None:
        fields = getattr(msg, _FIELDS_ATTR, None)
    if fields is not None:
        return fields.get(key, [])
    return [str(v) for k, v in msg.raw_items() if k.lower() == key]


def field_index(data: bytes) -> dict[str, list[str]]:
    """Lower-cased field name → its values as stored, in order, for the header section at the start of ``data``.

    Read by the program's one header reader (``courrier.mail.headers``), not by the stdlib parser: an obsolete
    ``From : x`` (RFC 5322 §4.5) is a From here as it is at submission and in IMAP, and a line that is no field does
    not end the header section (the stdlib would take the rest for the body and hide the fields after it)."""
    out: dict[str, list[str]] = {}
    for f in read_header(data).fields:
        out.setdefault(f.key, []).append(f.raw_text())
    return out


def header_fields(data: bytes) -> dict[str, list[str]]:
    """Every header field as the API's ``/headers`` shows it: name as written → its values, RFC 2047-decoded and
    unfolded, in order of first appearance."""
    out: dict[str, list[str]] = {}
    for f in read_header(data).fields:
        out.setdefault(f.name, []).append(" ".join(decode_words(f.raw_text()).split()))
    return out


# What the index keeps of the header section for ``header:Name:value`` searches: enough for every field an
# application sets, bounded so that a hostile message cannot make every row (and every search) large.
MAX_HEADER_FIELDS = 200
MAX_HEADER_VALUE = 2048
MAX_HEADER_TOTAL = 64 * 1024


def header_pairs(fields: dict[str, list[str]]) -> list[list[str]]:
    """``field_index`` → [[lower-cased name, value RFC 2047-decoded and unfolded]…] for the index's ``headers``
    column, within MAX_HEADER_FIELDS fields, MAX_HEADER_VALUE characters per value, MAX_HEADER_TOTAL in all."""
    out: list[list[str]] = []
    total = 0
    for name, values in fields.items():
        for v in values:
            value = " ".join(decode_words(v).split())[:MAX_HEADER_VALUE]
            total += len(name) + len(value)
            if len(out) >= MAX_HEADER_FIELDS or total > MAX_HEADER_TOTAL:
                return out
            out.append([name, value])
    return out


def _attach(msg: Message, data: bytes) -> Message:
    """Keeps the reader's field index with the message, for the later ``raw_values(msg, …)`` of its callers."""
    setattr(msg, _FIELDS_ATTR, field_index(data))
    return msg


def header_text(msg: Message, name: str, fields: dict[str, list[str]] | None = None) -> str:
    """A header's decoded value, whitespace collapsed ("" when absent); never raises on malformed input."""
    values = raw_values(msg, name, fields)
    if not values:
        return ""
    try:
        return " ".join(decode_words(values[0]).split())
    except Exception:
        return ""


def addresses(msg: Message, name: str, fields: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
    """Every address of the header fields ``name`` as Mailpit's ``{"Name", "Address"}``."""
    try:
        values = [_unraw(v) for v in raw_values(msg, name, fields)]
        pairs = email.utils.getaddresses(values)
    except Exception:
        return []
    return [{"Name": decode_words(display) if display else "", "Address": addr}
            for display, addr in pairs if addr and addr != "<>"]


def parse_date(value: str) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# --------------------------------------------------------------------------- parts


def walk(msg: Message) -> Iterator[tuple[str, Message]]:
    """(part id, leaf part) for every non-multipart part, depth first, with IMAP section numbers.

    Iterative, and bounded by ``MAX_DEPTH`` whatever tree it is given (``parse`` already refuses deeper ones)."""
    stack: list[tuple[str, Message, int]] = [("", msg, 1)]
    while stack:
        prefix, part, depth = stack.pop()
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            if depth < MAX_DEPTH:
                stack += [(f"{prefix}.{i}" if prefix else str(i), sub, depth + 1)
                          for i, sub in reversed(list(enumerate(payload, 1)))]
            continue
        yield (prefix or "1", part)


def find_part(msg: Message, part_id: str) -> Message | None:
    """The leaf part with this IMAP section number, or None (also for an id that is no section number)."""
    if not _PART_ID.match(part_id):
        return None
    for pid, part in walk(msg):
        if pid == part_id:
            return part
    return None


def part_bytes(part: Message) -> bytes:
    """The decoded content of a leaf part (transfer encoding removed)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    if isinstance(payload, list) and payload:  # message/rfc822: its serialized form
        try:
            return payload[0].as_bytes()
        except Exception:
            return b""
    return b""


# Python codecs that are no MIME charset: a "charset=idna" part must not choose how its octets are read.
_NOT_CHARSETS = {"idna", "punycode", "unicode_escape", "raw_unicode_escape", "unicode_internal", "undefined"}


def decode_text(data: bytes, charset: str | None) -> str:
    """Octets of a text part → text, never raising. Its charset when Python knows it as a text encoding (RFC 2046
    §4.1.2); no charset, US-ASCII, or one we do not know: UTF-8 when the octets are valid UTF-8 (most 8-bit text
    without a label is), else latin-1, which maps every octet to a character so nothing is lost."""
    cs = (charset or "").strip().lower()
    codec = None
    if cs not in ("", "us-ascii", "ascii"):
        try:
            info = codecs.lookup(cs)
            if getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS:
                codec = info.name
        except (LookupError, ValueError, TypeError):
            codec = None
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except Exception:  # noqa: BLE001 — a codec that raises even with "replace": fall back below
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def part_text(part: Message) -> str:
    """A text part decoded from its transfer encoding and charset (``decode_text``)."""
    try:
        cs = part.get_content_charset()
    except Exception:  # noqa: BLE001 — a malformed Content-Type parameter
        cs = None
    return decode_text(part_bytes(part), cs)


def _filename(part: Message) -> str:
    try:
        return decode_words(part.get_filename() or "")  # RFC 2231 decoded by email; RFC 2047 (common) here
    except Exception:
        return ""


def parse(data: bytes) -> tuple[Message, Parsed]:
    """Parses a message (LF or CRLF, without our trace block) into the fields the index and the API need.

    Never raises: what cannot be read is left out and said in ``Parsed.error`` (a part that fails is skipped, a MIME
    structure beyond ``mimebound``'s bounds is read as its header section alone)."""
    msg, error = parse_bounded(data)  # compat32: see the module docstring
    msg = _attach(msg, data)
    f = getattr(msg, _FIELDS_ATTR)
    p = Parsed()
    p.message_id = header_text(msg, "Message-ID", f).strip().strip("<>").strip()
    p.subject = header_text(msg, "Subject", f)
    p.date = parse_date(header_text(msg, "Date", f))
    frm = addresses(msg, "From", f)
    if frm:
        p.from_ = frm[0]
    p.to, p.cc, p.reply_to = addresses(msg, "To", f), addresses(msg, "Cc", f), addresses(msg, "Reply-To", f)
    p.x_tags = [t.strip() for t in header_text(msg, "X-Tags", f).split(",") if t.strip()]
    p.headers = header_pairs(f)
    p.error = error
    for pid, part in walk(msg) if not error else ():  # header section only: its body is no part to list
        try:
            _add_part(p, msg, f, pid, part)
        except Exception as e:  # noqa: BLE001 — one unreadable part must not hide the others
            p.error = p.error or f"part {pid} not read: {type(e).__name__}: {e}"[:300]
    return msg, p


def _add_part(p: Parsed, msg: Message, f: dict[str, list[str]], pid: str, part: Message) -> None:
    """Files one leaf part as the text body, the HTML body, an inline part or an attachment."""
    ctype = part.get_content_type()
    disp = (part.get_content_disposition() or "").lower()
    fname = _filename(part)
    cid = header_text(part, "Content-ID", f if part is msg else None).strip("<> ")
    is_body = disp != "attachment" and not fname
    if is_body and ctype == "text/plain" and not p.text:
        p.text = part_text(part)
        return
    if is_body and ctype == "text/html" and not p.html:
        p.html = part_text(part)
        return
    if is_body and ctype.startswith("text/") and not cid:
        return  # other body alternatives (text/enriched…)
    info = PartInfo(pid, ctype, fname or cid, cid, len(part_bytes(part)))  # unnamed: its Content-ID, as Mailpit
    if disp == "inline" or (cid and disp != "attachment"):
        p.inline.append(info)
    else:
        p.attachments.append(info)


# --------------------------------------------------------------------------- HTML → text

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
          "pre", "hr", "section", "article", "header", "footer", "title"}
_SKIP = {"script", "style", "head", "template", "noscript"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_to_text(source: str) -> str:
    """Readable text of an HTML body: scripts and styles dropped, blocks on their own lines, entities decoded."""
    ex = _TextExtractor()
    try:
        ex.feed(source)
        ex.close()
        text = "".join(ex.out)
    except Exception:
        text = html.unescape(re.sub(r"<[^>]*>", " ", source))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
