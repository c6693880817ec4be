"""What a Sieve test looks at in a message (RFC 5228 §5): its header fields, decoded and unfolded (§2.7.2), the
addresses in them (§5.1), its size, and for the body test (RFC 5173) its text parts — each worked out on first use,
so a script that looks at two header fields parses no more than the header section."""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SIMPLE_ADDRESS = re.compile(r'^(?:[^<>",;:()@\\]*<([^<>\s",;:()@\\]+@[^<>\s",;:()@\\]+)>|\s*([^<>\s",;:()@\\]+@'
                             r'[^<>\s",;:()@\\]+))\s*$')
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.M)


def decode_value(raw: str) -> str:
    """RFC 2047 encoded words decoded (RFC 5228 §2.7.2); left as is when they do not decode."""
    if "=?" not in raw:
        return raw
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):
        return raw


class MessageView:
    """A read-only view of one message (``data``: the whole message, CRLF or LF)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        end = data.find(b"\r\n\r\n")
        sep = 4
        lf = data.find(b"\n\n")
        if lf >= 0 and (end < 0 or lf < end):
            end, sep = lf, 2
        if end < 0:
            end, sep = len(data), 0
        self.head = data[:end]
        self.body_raw = data[end + sep:]
        self.size = len(data)
        self._fields: dict[str, list[str]] | None = None
        self._parsed: Message | None = None
        self._decoded: dict[str, list[str]] = {}
        self._addresses: dict[str, list[str]] = {}
        self._folded: dict[str, list[str]] = {}

    @property
    def fields(self) -> dict[str, list[str]]:
        """Lower-cased field name → its values in order, unfolded, with RFC 2047 words left encoded."""
        if self._fields is None:
            out: dict[str, list[str]] = {}
            for m in _FIELD.finditer(self.head):
                name = m.group(1).decode("ascii").lower()
                value = m.group(2)
                if b"\n" in value:  # folded (RFC 5322 §2.2.3)
                    value = re.sub(rb"\r?\n(?=[ \t])", b"", value)
                value = value.strip(b" \t\r")
                out.setdefault(name, []).append(value.decode("utf-8", "replace"))
            self._fields = out
        return self._fields

    def header(self, name: str) -> list[str]:
        """The decoded values of every field called ``name`` (RFC 5228 §5.7)."""
        found = self._decoded.get(name)
        if found is None:
            fields = self._fields if self._fields is not None else self.fields
            found = self._decoded[name] = [decode_value(v) for v in fields.get(name.lower(), ())]
        return found

    def header_folded(self, name: str) -> list[str]:
        """``header(name)`` with ASCII letters lower-cased (the i;ascii-casemap comparator, RFC 4790 §9.2)."""
        found = self._folded.get(name)
        if found is None:
            found = self._folded[name] = [v.translate(ASCII_LOWER) for v in self.header(name)]
        return found

    def raw_header(self, name: str) -> list[str]:
        fields = self._fields if self._fields is not None else self.fields
        return fields.get(name.lower(), [])

    def addresses(self, name: str) -> list[str]:
        """The addr-specs in every field called ``name`` (RFC 5228 §5.1); group names and display names dropped."""
        found = self._addresses.get(name)
        if found is None:
            found = []
            for v in self.raw_header(name):
                m = _SIMPLE_ADDRESS.match(v) if "=?" not in v else None
                if m:  # one plain address: what most From and To fields hold
                    found.append(m.group(1) or m.group(2))
                else:
                    found += [a for _, a in getaddresses([decode_value(v)])]
            self._addresses[name] = found
        return found

    @property
    def parsed(self) -> Message:
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self.data, policy=email.policy.compat32)
        return self._parsed

    def body_text(self, transform: str, types: list[str] | None = None) -> list[str]:
        """RFC 5173 §5: ``:raw`` the undecoded body; ``:text`` the decoded text parts; ``:content`` the decoded parts
        whose type matches one of ``types`` (``"text"`` = text/*, ``""`` = any)."""
        if transform == ":raw":
            return [self.body_raw.decode("utf-8", "replace")]
        if transform == ":text":
            types = ["text"]
        out: list[str] = []
        for part in self.parsed.walk():
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            maintype = ctype.split("/")[0]
            if types is not None and not any(t == "" or t == ctype or t == maintype for t in
                                             (x.lower() for x in types)):
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "us-ascii"
            try:
                text = payload.decode(charset, "replace")
            except LookupError:
                text = payload.decode("utf-8", "replace")
            if ctype == "text/html" and transform == ":text":
                text = re.sub(r"<[^>]*>", " ", text)  # RFC 5173 §5.2: HTML reduced to its text
            out.append(text)
        return out
