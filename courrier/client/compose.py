"""Builds the message a user asked for, with the stdlib ``email`` package doing the MIME work.

Plain text, an HTML alternative (multipart/alternative, RFC 2046 §5.1.4), attachments (multipart/mixed, file names
in RFC 2231 form when they are not ASCII), encoded words for non-ASCII headers (RFC 2047), ``Date:`` and
``Message-ID:`` (RFC 5322 §3.6.1, §3.6.4). ``--header "K: V"`` replaces a generated header of the same name, so the
header ``From:`` may differ from the envelope sender — the SMTP story's forged-mail demonstration. ``Bcc:`` is never
written into the message: those addresses go in the envelope only.
"""

from __future__ import annotations

import email.policy
import email.utils
import mimetypes
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path


class ComposeError(Exception):
    """The message cannot be built as asked (bad address, unreadable file, bad header)."""


@dataclass
class Draft:
    """What ``courrier send`` was asked to send; every field optional except ``sender``."""

    sender: str
    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    attachments: Sequence[Path] = ()
    headers: Sequence[tuple[str, str]] = field(default_factory=list)


def addr_spec(address: str) -> str:
    """``"Ann <ann@x.test>"`` or ``ann@x.test`` → ``ann@x.test``; raises ComposeError when there is no address."""
    _name, spec = email.utils.parseaddr(address)
    if not spec or "@" not in spec or any(c in spec for c in " <>\r\n"):
        raise ComposeError(f"bad address {address!r}")
    return spec


def parse_header_option(value: str) -> tuple[str, str]:
    """``"K: V"`` → (K, V); the name must be a valid field name (RFC 5322 §3.6.8), the value a single line."""
    name, sep, val = value.partition(":")
    name, val = name.strip(), val.strip()
    if not sep or not name or any(not (33 <= ord(c) <= 126) or c == ":" for c in name):
        raise ComposeError(f"bad --header {value!r} (expected \"Name: value\")")
    if "\r" in val or "\n" in val:
        raise ComposeError(f"bad --header {value!r}: the value must be one line")
    return name, val


class _TextOfHTML(HTMLParser):
    """The readable text of an HTML body, for the text/plain alternative when only HTML was given."""

    _SKIP = {"script", "style", "head", "title"}
    _BREAK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def text_of_html(html: str) -> str:
    p = _TextOfHTML()
    p.feed(html)
    p.close()
    lines = [" ".join(line.split()) for line in "".join(p.parts).splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


# Headers that appear at most once (RFC 5322 §3.6): a --header of that name replaces the generated one.
_SINGLE = {"from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id", "mime-version",
           "in-reply-to", "references"}


def _needs_utf8(*addresses: str) -> bool:
    return any(not addr_spec(a).isascii() for a in addresses if a)


def build(d: Draft, *, now: datetime | None = None) -> EmailMessage:
    """The message as an EmailMessage; ``policy`` is SMTPUTF8 when an address needs it, SMTP otherwise."""
    utf8 = _needs_utf8(d.sender, *d.to, *d.cc)
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    domain = addr_spec(d.sender).rpartition("@")[2]
    try:
        msg["From"] = d.sender
        if d.to:
            msg["To"] = ", ".join(d.to)
        if d.cc:
            msg["Cc"] = ", ".join(d.cc)
        if d.subject is not None:
            msg["Subject"] = d.subject
        msg["Date"] = email.utils.format_datetime((now or datetime.now(UTC)).astimezone())
        # make_msgid's default domain is socket.getfqdn(), a DNS lookup: the sender's domain is ours to use.
        msg["Message-ID"] = email.utils.make_msgid(domain=domain.encode("idna").decode() if not domain.isascii()
                                                   else domain)
        for name, value in d.headers:
            if name.lower() == "bcc":
                raise ComposeError("use --bcc: Bcc addresses belong in the envelope, never in the message")
            if name in msg and name.lower() in _SINGLE:
                msg.replace_header(name, value)  # keeps the header's place
            else:
                msg[name] = value
    except (ValueError, TypeError, IndexError) as e:
        raise ComposeError(f"bad header: {e}") from None
    text = d.body if d.body is not None else (text_of_html(d.html) if d.html is not None else "")
    # Non-ASCII text goes quoted-printable: 7-bit safe whether or not the server offers 8BITMIME (RFC 6152).
    msg.set_content(text, cte=None if text.isascii() else "quoted-printable")
    if d.html is not None:
        msg.add_alternative(d.html, subtype="html", cte=None if d.html.isascii() else "quoted-printable")
    for path in d.attachments:
        attach_file(msg, path)
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # EmailMessage adds it to every part it makes; only the top needs it
    return msg


def attach_file(msg: EmailMessage, path: Path) -> None:
    """Adds ``path`` as an attachment with a type guessed from its name (application/octet-stream otherwise)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ComposeError(f"cannot read attachment {path}: {e.strerror or e}") from None
    ctype, encoding = mimetypes.guess_type(str(path))
    if ctype is None or encoding is not None:  # .gz and friends: send the bytes, not a text type
        ctype = "application/octet-stream"
    maintype, subtype = ctype.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=Path(path).name)


def to_bytes(msg: EmailMessage) -> bytes:
    """Wire form, CRLF line endings (the policy's linesep)."""
    return msg.as_bytes()


def envelope(d: Draft, envelope_from: str | None = None) -> tuple[str, list[str]]:
    """(MAIL FROM address, RCPT TO addresses): To, Cc and Bcc, each once, in order."""
    rcpts: list[str] = []
    for a in (*d.to, *d.cc, *d.bcc):
        for _name, spec in email.utils.getaddresses([a]):
            spec = addr_spec(spec)
            if spec.lower() not in (r.lower() for r in rcpts):
                rcpts.append(spec)
    sender = addr_spec(envelope_from) if envelope_from else addr_spec(d.sender)
    return sender, rcpts


def read_eml(path: Path) -> tuple[bytes, EmailMessage]:
    """An existing message, sent as is: its bytes and its parsed headers (to find a sender and recipients)."""
    try:
        raw = Path(path).read_bytes() if str(path) != "-" else sys.stdin.buffer.read()
    except OSError as e:
        raise ComposeError(f"cannot read {path}: {e.strerror or e}") from None
    if not raw.strip():
        raise ComposeError(f"{path} is empty")
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=True)
    return raw, parsed  # type: ignore[return-value]


def eml_envelope(parsed: EmailMessage) -> tuple[str | None, list[str]]:
    """Sender (Sender, else From) and recipients (To, Cc, Bcc) named in a message's headers."""
    sender = None
    for h in ("Sender", "From"):
        found = email.utils.getaddresses(parsed.get_all(h, []))
        if found and found[0][1]:
            sender = found[0][1]
            break
    rcpts: list[str] = []
    for _name, spec in email.utils.getaddresses([*parsed.get_all("To", []), *parsed.get_all("Cc", []),
                                                 *parsed.get_all("Bcc", [])]):
        if spec and spec not in rcpts:
            rcpts.append(spec)
    return sender, rcpts


__all__ = ["ComposeError", "Draft", "addr_spec", "build", "envelope", "eml_envelope",
           "parse_header_option", "read_eml", "text_of_html", "to_bytes"]
