"""The envelope of a captured message, kept in the message file itself (so deleting the index loses nothing).

Each captured message is stored as one ordinary RFC 5322 message (IMAP and POP3 serve the capture Maildir as an
INBOX), with exactly three trace header fields prepended, in this order:

    Return-Path: <sender@example.com>                            RFC 5321 §4.4: the envelope sender
    X-Courrier-Envelope: id=Vq3k…; received=1764245263.123456;   our record (folded at "; ", RFC 5322 §2.2.3)
     qid=…; listener=smtp; client=127.0.0.1:53211; helo=app.local;
     tls=TLSv1.3 TLS_AES_256_GCM_SHA384; user=alice; tag=news;
     rcpt=<bob@example.test>; rcpt=<carol+news@example.test>
    Received: from app.local (app.local [127.0.0.1]) by … ; <date>  RFC 5321 §4.4

Values are percent-encoded (UTF-8, RFC 3986 style) for any octet outside printable ASCII and for ``%`` and ``;``,
so the header stays 7-bit whatever the envelope held (SMTPUTF8 addresses included). ``key=value`` items may repeat
(``rcpt``, ``tag``); unknown keys are ignored by older readers. Only the *first* X-Courrier-Envelope field counts:
ours is always written before anything the client sent, so a forged one further down is never read.

``strip_trace`` removes these three fields again: what remains is the message exactly as the client sent it.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from courrier.mail.envelope import Envelope, Hop

HEADER = "X-Courrier-Envelope"
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # shortuuid's base57, as Mailpit's IDs
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%;\\")


def new_id() -> str:
    """A random 22-character message ID (Mailpit's style: opaque, URL-safe, ~128 bits)."""
    n = int.from_bytes(secrets.token_bytes(17), "big")
    out = []
    for _ in range(22):
        n, r = divmod(n, 57)
        out.append(_ALPHABET[r])
    return "".join(out)


_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def _enc(v: str) -> str:
    return quote(v, safe=_SAFE)


# header key → CapturedEnvelope attribute
_SCALAR_KEYS = {"id": "id", "qid": "qid", "listener": "listener", "client": "client", "from": "mail_from",
                "helo": "helo", "tls": "tls", "user": "user"}
_LIST_KEYS = {"tag": "tags", "rcpt": "rcpts"}


@dataclass
class CapturedEnvelope:
    """What the SMTP transaction said about a message, beyond the message itself: the stored record of capture
    mode, built from the program's envelope and hop (``of``), read back from the file (``parse``)."""

    id: str = field(default_factory=new_id)
    received: float = field(default_factory=time.time)
    mail_from: str = ""  # "" is the null reverse-path <>
    rcpts: list[str] = field(default_factory=list)
    client: str = ""  # "ip:port" ("[v6]:port" for IPv6)
    helo: str | None = None
    tls: str | None = None  # "TLSv1.3 TLS_AES_256_GCM_SHA384" when the session was encrypted
    user: str | None = None  # the SMTP AUTH identity (Mailpit's Username)
    listener: str = "smtp"
    qid: str = ""
    tags: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, env: Envelope, hop: Hop) -> CapturedEnvelope:
        """The record of a message the capture role accepted: the program's envelope and the hop it came by."""
        ip = hop.client_ip or ""
        host = f"[{ip}]" if ":" in ip else ip
        tags: list[str] = []
        for r in env.rcpts:
            t = r.tag if r.tag is not None else r.address.tag
            if t and t not in tags:
                tags.append(t)
        return cls(received=env.received_at, mail_from=str(env.mail_from), rcpts=[str(r.address) for r in env.rcpts],
                   client=f"{host}:{hop.client_port}", helo=hop.helo,
                   tls=f"{hop.tls.version} {hop.tls.cipher}" if hop.tls else None, user=hop.user,
                   listener=hop.listener, qid=env.queue_id, tags=tags)

    @property
    def client_ip(self) -> str:
        host = self.client.rpartition(":")[0] if ":" in self.client else self.client
        return host.strip("[]")

    def header(self) -> str:
        """The ``X-Courrier-Envelope:`` field, folded, LF-terminated."""
        items = [f"id={_enc(self.id)}", f"received={self.received:.6f}", f"qid={_enc(self.qid)}",
                 f"listener={_enc(self.listener)}", f"client={_enc(self.client)}", f"from=<{_enc(self.mail_from)}>"]
        if self.helo:
            items.append(f"helo={_enc(self.helo)}")
        if self.tls:
            items.append(f"tls={_enc(self.tls)}")
        if self.user:
            items.append(f"user={_enc(self.user)}")
        items += [f"tag={_enc(t)}" for t in self.tags]
        items += [f"rcpt=<{_enc(r)}>" for r in self.rcpts]
        lines, cur = [], f"{HEADER}:"
        for i, item in enumerate(items):
            piece = f" {item}" + (";" if i < len(items) - 1 else "")
            if len(cur) + len(piece) > 76 and cur != f"{HEADER}:":
                lines.append(cur)
                cur = ""
            cur += piece
        lines.append(cur)
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, value: str) -> CapturedEnvelope:
        """Reads an (unfolded or folded) header value; raises ValueError when it lacks an id."""
        env = cls(id="", received=0.0)
        for item in re.sub(r"\r?\n[ \t]", " ", value).split(";"):
            key, eq, raw = item.strip().partition("=")
            if not eq:
                continue
            if raw.startswith("<") and raw.endswith(">"):
                raw = raw[1:-1]
            v = unquote(raw)
            if key in _SCALAR_KEYS:
                setattr(env, _SCALAR_KEYS[key], v)
            elif key == "received":
                env.received = float(v)
            elif key in _LIST_KEYS:
                getattr(env, _LIST_KEYS[key]).append(v)
        if not env.id or not valid_id(env.id):
            raise ValueError("envelope header without a valid id")
        return env


def split_header_fields(data: bytes) -> tuple[list[bytes], int]:
    """The header section of ``data`` (LF or CRLF) as a list of raw fields (with continuation lines), and the offset
    where the body starts (after the empty line), or len(data) when there is none."""
    fields: list[bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        line = data[pos:end]
        if line in (b"\n", b"\r\n"):
            return fields, end
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
        pos = end
    return fields, n


def read_envelope(head: bytes) -> CapturedEnvelope | None:
    """The envelope of a stored message (from its first bytes), or None when it has no X-Courrier-Envelope field.

    Only the trace block is considered: the fields before the first one that is none of ours.
    """
    fields, _ = split_header_fields(head)
    for f in fields[:3]:
        name, _, value = f.partition(b":")
        name_s = name.decode("ascii", "replace").strip().lower()
        if name_s == HEADER.lower():
            try:
                return CapturedEnvelope.parse(value.decode("ascii", "replace"))
            except ValueError:
                return None
        if name_s not in ("return-path", "received"):
            return None
    return None


def strip_trace(data: bytes) -> bytes:
    """The message as the client sent it: ``data`` without our Return-Path / X-Courrier-Envelope / Received block.

    When the message has no envelope field (a file someone else put in the Maildir), it is returned unchanged.
    """
    fields, _ = split_header_fields(data[:65536])
    if len(fields) < 2:
        return data
    names = [f.partition(b":")[0].strip().lower() for f in fields[:3]]
    if names[:2] != [b"return-path", HEADER.lower().encode()]:
        return data
    cut = sum(len(f) for f in fields[:3]) if len(names) == 3 and names[2] == b"received" else \
        sum(len(f) for f in fields[:2])
    return data[cut:]
