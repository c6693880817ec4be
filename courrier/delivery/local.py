"""Local delivery: trace headers (RFC 5321 §4.4) and one durable Maildir copy per mailbox.

``Return-Path:`` records the envelope sender, ``Delivered-To:`` the mailbox, ``Received:`` the hop with its TLS
details when this delivery is also the receipt (``courrier.mail.trace``). A message with more recipients that
resolve to the same mailbox (user, user+tag, an alias) is stored once.

Once the copies are stored, ``on_delivered`` (the app wires the queue's success report, RFC 3461 §5.2.3) hears which
recipients got the message; it decides who asked NOTIFY=SUCCESS. Its failure is logged, never the delivery's: the
message is already in the mailbox, and a 4xx now would have the client send it twice.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from courrier import log
from courrier.mail.envelope import Envelope, Hop, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.trace import delivery_trace
from courrier.mailbox.api import MailStore

# (envelope, hop, message, recipients delivered) → sends what they asked to be told (a success DSN)
DeliveredHook = Callable[[Envelope, Hop | None, ReceivedMessage, list[Recipient]], Awaitable[None]]


def without_fields(msg: ReceivedMessage, drop: frozenset[int], limit: int = 1 << 20) -> Iterator[bytes]:
    """``msg`` without the header fields numbered in ``drop`` (forged Authentication-Results, RFC 8601 §5).

    A field is a line plus its continuation lines (RFC 5322 §2.2.3). The header section is looked for in the first
    ``limit`` octets; without an end there, nothing is dropped. The body is streamed unchanged.
    """
    msg.file.seek(0)
    head = msg.file.read(limit)
    end = head.find(b"\r\n\r\n")
    if end < 0:
        yield from msg.chunks()
        return
    index = -1
    kept = []
    for line in re.findall(rb"[^\n]*\n", head[:end + 2]):  # split at LF as courrier.mailauth counts fields
        if not (line[:1] in (b" ", b"\t") and index >= 0):
            index += 1
        if index not in drop:
            kept.append(line)
    yield b"".join(kept)
    yield head[end + 2:]
    while chunk := msg.file.read(1 << 20):
        yield chunk


async def deliver_local(store: MailStore, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                        mailboxes: dict[str, str], extra_headers: bytes = b"",
                        folders: dict[str, str | None] | None = None,
                        drop_fields: tuple[int, ...] = (), on_delivered: DeliveredHook | None = None) -> list[Path]:
    """Stores ``msg`` once per mailbox. ``mailboxes`` maps account → the RCPT address that reached it.

    ``hop``: the receipt this delivery completes (the MX and submission roles: its Received: line is written here);
    None for mail out of the queue, whose Received: line is already in the message (``courrier.mail.trace``).

    ``drop_fields``: header fields of ``msg`` (0-based) left out of every copy (see ``without_fields``);
    ``on_delivered``: told the envelope recipients whose mailbox now holds the message (see the module docstring).
    """
    copies = []
    for account, rcpt in mailboxes.items():
        folder = (folders or {}).get(account)
        path = store.folder_for(account, folder)
        copies.append((path, delivery_trace(env, hop, account, rcpt) + extra_headers))

    # The copies are written one after the other by one disk thread, each streaming the spool from its start.
    body = functools.partial(without_fields, msg, frozenset(drop_fields)) if drop_fields else msg.chunks
    paths = await store.deliver(copies, body, size=msg.size)  # in memory up to the spool's limit
    for path, _ in copies:  # wake IMAP IDLE sessions and selected mailboxes (RFC 2177)
        store.notify(path)
    if on_delivered is not None:
        delivered = [r for r in env.rcpts if r.mailbox in mailboxes]
        try:
            await on_delivered(env, hop, msg, delivered)
        except Exception as e:
            log.event("delivery.notice_failed", level="error", qid=env.queue_id, error=repr(e))
    return paths
