"""``POST /api/v1/message/{ID}/release``: hand a captured message to the outbound path.

The App's outbound MTA (``App.queue_outbound(env, hop, msg, rcpts) -> Reply``, handed over as ``Outbound`` by
``App.web_context``) queues the message durably, DKIM-signs it and delivers it — through ``[delivery] smarthost``
when one is configured, by MX otherwise — with retries and bounces: release is just another submission, from a
trusted local client. A context without an outbound path refuses release (as Mailpit does when no relay is
configured).

Because release sends captured mail to the world, its recipients are checked as submission's are, before anything
is queued (``check_recipients``; one refused recipient fails the whole release, 400): one address per entry, bare or
``Name <addr>``; no source route (RFC 5321 §4.1.1.3 lets a server ignore them, we refuse them); no IP-literal
domain (``user@[192.0.2.1]`` reaches any host, DNS and MX rules bypassed); at most ``[limits] max_recipients``;
and each bare address must match ``[capture] release_allowed`` when set. The copy that leaves (``release_copy``)
has no ``Bcc:`` field — the captured message's hidden recipients stay hidden, as a submission server would remove
it (RFC 5322 §3.6.3) — and a new ``Date:`` (Mailpit's behaviour: the release is a new sending).
"""

from __future__ import annotations

import email.utils
import io
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from courrier import log
from courrier.mail.path import AddressError, parse_address

if TYPE_CHECKING:
    from courrier.config import Config
    from courrier.mail.envelope import Envelope, Hop, Recipient
    from courrier.mail.message import ReceivedMessage
    from courrier.mail.reply import Reply

Relay = Callable[[str, str, list[str], bytes], Awaitable[None]]
# The composition root's outbound path (``App.queue_outbound``): queues durably, signs, delivers.
Outbound = Callable[["Envelope", "Hop", "ReceivedMessage", "list[Recipient]"], Awaitable["Reply"]]


class RelayError(Exception):
    """Release failed: the message says why (the reply of the outbound path or of the smarthost)."""


class RecipientError(ValueError):
    """A release recipient that is refused (the API answers 400 with this text)."""


def bare_address(entry: Any) -> str:
    """``addr`` or ``Name <addr>`` → the address, checked; RecipientError when it is none we release to."""
    if not isinstance(entry, str):
        raise RecipientError("To: expected an array of strings")
    text = entry.strip()
    if not text or any(c in text for c in "\r\n\x00"):
        raise RecipientError(f"invalid email address {entry[:100]!r}")
    if "<" in text:
        open_ = text.rfind("<")
        if not text.endswith(">") or text.count(">") != 1 or text.count("<") != 1:
            raise RecipientError(f"invalid email address {entry[:100]!r}")
        text = text[open_ + 1:-1].strip()
    if text.startswith("@"):
        raise RecipientError(f"source routes are not accepted: {entry[:100]!r}")
    try:
        a = parse_address(text, utf8=True)
    except AddressError as e:
        raise RecipientError(f"invalid email address {entry[:100]!r}: {e}") from None
    if a.is_domain_literal:
        raise RecipientError(f"IP-literal domains are not accepted: {entry[:100]!r}")
    return str(a)


def check_recipients(entries: list[Any], *, max_recipients: int, allowed: str = "") -> list[str]:
    """The bare addresses to release to, duplicates dropped; RecipientError for the first refused one."""
    if not entries:
        raise RecipientError("no valid To addresses found")
    pattern = re.compile(allowed) if allowed else None
    out: list[str] = []
    for e in entries:
        addr = bare_address(e)
        if pattern is not None and not pattern.search(addr):
            raise RecipientError(f"recipient {addr!r} is not allowed by [capture] release_allowed")
        if addr.lower() not in (o.lower() for o in out):
            out.append(addr)
        if len(out) > max_recipients:
            raise RecipientError(f"too many recipients (at most {max_recipients}, [limits] max_recipients)")
    return out


_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")  # RFC 5322 §3.6.8, obs-optional WSP (§4.5)


def release_copy(raw: bytes, now: datetime | None = None) -> bytes:
    """The message as it is released: its ``Bcc:`` fields removed, its ``Date:`` now; every other octet kept."""
    lines = raw.splitlines(keepends=True)
    eol = b"\r\n" if raw[:raw.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    end = next((n for n, line in enumerate(lines) if line in (b"\r\n", b"\n")), len(lines))
    out: list[bytes] = []
    dropping = False
    for line in lines[:end]:
        if line[:1] in (b" ", b"\t"):  # continuation of the field before
            if not dropping:
                out.append(line)
            continue
        m = _FIELD_NAME.match(line)
        dropping = (m.group(1).lower() if m else b"") in (b"bcc", b"date")
        if not dropping:
            out.append(line)
    date = email.utils.format_datetime(now or datetime.now().astimezone()).encode()
    return b"Date: " + date + eol + b"".join(out) + b"".join(lines[end:])


def to_crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_relay(outbound: Outbound, cfg: Config) -> tuple[Relay, str]:
    """The release path over ``outbound``, and how ``/api/v1/webui`` describes it."""
    smarthost = cfg.delivery.smarthost
    desc = f"outbound queue via smarthost {smarthost}" if smarthost else "outbound queue (MX)"
    return _via_outbound(outbound, cfg.hostname), desc


def _via_outbound(outbound: Outbound, hostname: str) -> Relay:
    from courrier.mail.envelope import Envelope, Hop, Recipient
    from courrier.mail.message import ReceivedMessage
    from courrier.mail.path import parse_path

    async def relay(msg_id: str, mail_from: str, rcpts: list[str], raw: bytes) -> None:
        data = to_crlf(raw)
        # The release is a receipt without a client: its Received: line names our host only (courrier.mail.trace).
        hop = Hop(by=hostname, listener="release")
        env = Envelope(mail_from=parse_path(f"<{mail_from}>", allow_null=True, utf8=True), smtputf8=True)
        env.rcpts = [Recipient(parse_path(f"<{r}>", allow_null=False, utf8=True)) for r in rcpts]
        msg = ReceivedMessage(io.BytesIO(data), len(data))
        reply = await outbound(env, hop, msg, env.rcpts)
        log.event("http.release", id=msg_id, qid=env.queue_id, rcpts=len(rcpts), reply=str(reply))
        if not reply.ok:
            raise RelayError(str(reply))

    return relay
