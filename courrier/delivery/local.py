"""Local delivery: trace headers (RFC 5321 §4.4) and one durable Maildir copy per mailbox.

``Return-Path:`` records the envelope sender, ``Delivered-To:`` the mailbox, ``Received:`` the hop with its TLS
details when this delivery is also the receipt (``courrier.mail.trace``). A message with more recipients that
resolve to the same mailbox (user, user+tag, an alias) is stored once.

Once the copies are stored, ``on_delivered`` (the app wires the queue's success report, RFC 3461 §5.2.3) hears which
recipients got the message; it decides who asked NOTIFY=SUCCESS. Its failure is logged, never the delivery's: the
message is already in the mailbox, and a 4xx now would have the client send it twice.

With ``sieve`` (courrier/delivery/sieve.py) each account's active Sieve script decides where its copies go; see
``_deliver_sieve``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from courrier import log
from courrier.delivery.sieve import Decision, SieveFilter, SieveRejected
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
                        drop_fields: tuple[int, ...] = (), on_delivered: DeliveredHook | None = None,
                        sieve: SieveFilter | None = None, may_refuse: bool = False) -> list[Path]:
    """Stores ``msg`` once per mailbox. ``mailboxes`` maps account → the RCPT address that reached it.

    ``hop``: the receipt this delivery completes (the MX and submission roles: its Received: line is written here);
    None for mail out of the queue, whose Received: line is already in the message (``courrier.mail.trace``).

    ``drop_fields``: header fields of ``msg`` (0-based) left out of every copy (see ``without_fields``);
    ``on_delivered``: told the envelope recipients whose mailbox now holds the message (see the module docstring).

    ``sieve``: run the accounts' Sieve scripts; with ``may_refuse`` (the client waits for the answer) a reject by
    every account raises SieveRejected before anything is stored.
    """
    if sieve is not None:
        decisions: dict[str, Decision] = {}
        for account, rcpt in mailboxes.items():
            d = await sieve.decide(env, msg, account, rcpt, (folders or {}).get(account))
            if d is not None:
                decisions[account] = d
        if decisions:
            if may_refuse and len(decisions) == len(mailboxes) and all(
                    d.result is not None and d.result.reject is not None for d in decisions.values()):
                raise SieveRejected(next(iter(decisions.values())).result.reject or "")  # type: ignore[union-attr]
            return await _deliver_sieve(store, env, hop, msg, mailboxes, extra_headers, folders, drop_fields,
                                        on_delivered, sieve, decisions)
    copies = []
    for account, rcpt in mailboxes.items():
        folder = (folders or {}).get(account)
        path = store.folder_for(account, folder)
        copies.append((path, delivery_trace(env, hop, account, rcpt) + extra_headers))

    # The copies are written one after the other by one disk thread, each streaming the spool from its start.
    paths = await store.deliver(copies, _body(msg, drop_fields), size=msg.size)  # in memory up to the spool's limit
    for path, _ in copies:  # wake IMAP IDLE sessions and selected mailboxes (RFC 2177)
        store.notify(path)
    await _tell_delivered(on_delivered, env, hop, msg, mailboxes)
    return paths


def _body(msg: ReceivedMessage, drop_fields: tuple[int, ...]) -> Callable[[], Iterator[bytes]]:
    """The copies' body: the message as received, or without the fields numbered in ``drop_fields``."""
    return functools.partial(without_fields, msg, frozenset(drop_fields)) if drop_fields else msg.chunks


async def _tell_delivered(on_delivered: DeliveredHook | None, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                          mailboxes: dict[str, str]) -> None:
    """``on_delivered`` with the recipients whose mailbox now holds the message; its failure is logged only (see
    the module docstring)."""
    if on_delivered is None:
        return
    delivered = [r for r in env.rcpts if r.mailbox in mailboxes]
    if not any(r.notify for r in delivered):  # nobody asked to be told anything (RFC 3461 §4.1): no call
        return
    try:
        await on_delivered(env, hop, msg, delivered)
    except Exception as e:
        log.event("delivery.notice_failed", level="error", qid=env.queue_id, error=repr(e))


async def _deliver_sieve(store: MailStore, env: Envelope, hop: Hop | None, msg: ReceivedMessage,
                         mailboxes: dict[str, str], extra_headers: bytes, folders: dict[str, str | None] | None,
                         drop_fields: tuple[int, ...], on_delivered: DeliveredHook | None, sieve: SieveFilter,
                         decisions: dict[str, Decision]) -> list[Path]:
    """Stores the copies the scripts decided (flagged copies through the index, so their flags are set as they
    arrive), the error notes, then queues what the scripts send."""
    body = _body(msg, drop_fields)
    plain: list[tuple[Path, bytes]] = []
    flagged: list[tuple[Path, bytes, frozenset[str]]] = []
    notes: list[tuple[Path, bytes]] = []
    for account, rcpt in mailboxes.items():
        default = (folders or {}).get(account)
        headers = delivery_trace(env, hop, account, rcpt) + extra_headers
        d = decisions.get(account)
        if d is None:
            plain.append((store.folder_for(account, default), headers))
            continue
        for c in d.copies:
            path = await _folder(store, env, account, c.folder, c.create, default)
            if c.flags:
                flagged.append((path, headers, c.flags))
            else:
                plain.append((path, headers))
        if d.report is not None:
            notes.append((store.folder_for(account, None), d.report))
    paths: list[Path] = []
    if plain:
        paths += await store.deliver(plain, body, size=msg.size)
    for path, headers, flags in flagged:
        data = headers + b"".join(body())
        await store.run(store.index.append, path, data, flags)
    for path, note in notes:
        paths += await store.deliver([(path, b"")], functools.partial(iter, [note]), size=len(note))
    for path in {p for p, _ in plain} | {p for p, _, _ in flagged} | {p for p, _ in notes}:
        store.notify(path)
    await _tell_delivered(on_delivered, env, hop, msg, mailboxes)
    await sieve.flush(list(decisions.values()), env)
    return paths


async def _folder(store: MailStore, env: Envelope, account: str, name: str | None, create: bool,
                  default: str | None) -> Path:
    """The Maildir of ``name`` (an IMAP folder name from fileinto; None: the delivery default). A folder that does
    not exist is made with ``:create`` (RFC 5490 §3.2); otherwise, or when the name cannot be used, the copy goes
    to the INBOX (logged) — never lost."""
    if name is None:
        return store.folder_for(account, default)
    try:
        root = store.account_root(account)
        if store.folder_exists(root, name):
            return store.folder(root, name)
        if create:
            return await store.run(store.create_folder, root, name)
        reason = "folder does not exist (no :create)"
    except Exception as e:  # FolderError, ValueError: a name the store refuses
        reason = str(e) or type(e).__name__
    log.event("sieve.fileinto_failed", level="warn", qid=env.queue_id, account=account, folder=name, reason=reason)
    return store.folder_for(account, None)
