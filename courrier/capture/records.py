"""The typed records a message store answers with: one shape for the capture store and the server-mode mailboxes.

Stores return these; only ``courrier/web/api/mailpit.py`` turns them into Mailpit's JSON (field names, date format),
so a store never knows the API's spelling and the API never re-reads a store's dicts. ``message_of`` builds the
full record from a parsed message — the part checksums and ``List-Unsubscribe`` links are the same in both modes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message as EmailMessage

from courrier.capture import parse as P
from courrier.capture import unsubscribe


@dataclass(frozen=True)
class Address:
    name: str = ""
    address: str = ""

    @classmethod
    def of(cls, d: Mapping[str, str]) -> Address:
        """From the parser's ``{"Name", "Address"}`` (also the index's JSON columns)."""
        return cls(d.get("Name", ""), d.get("Address", ""))


def addresses(items: list[Mapping[str, str]]) -> list[Address]:
    return [Address.of(a) for a in items]


@dataclass(frozen=True)
class Summary:
    """One message in a list (Mailpit's MessageSummary)."""

    id: str
    message_id: str
    read: bool
    from_: Address
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    subject: str
    created: float  # arrival, seconds since the epoch
    username: str
    tags: list[str]
    size: int
    attachments: int
    snippet: str


@dataclass(frozen=True)
class Part:
    """An attachment or inline part, with the checksums of its decoded content."""

    part_id: str
    filename: str
    content_type: str
    content_id: str
    size: int
    md5: str
    sha1: str
    sha256: str


@dataclass(frozen=True)
class Message:
    """One whole message (Mailpit's Message): its summary, and what only a parse of the file gives."""

    summary: Summary
    return_path: str
    date: float  # the Date field, or the arrival time without one
    list_unsubscribe: str
    list_unsubscribe_links: list[str]
    list_unsubscribe_post: str
    text: str
    html: str
    inline: list[Part] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)
    list_unsubscribe_errors: str = ""  # what is wrong with the field, Mailpit's words (capture/unsubscribe.py)


@dataclass(frozen=True)
class Page:
    """A page of a list or of a search (Mailpit's MessagesSummary), newest first."""

    total: int
    unread: int
    messages_count: int  # matching the search (all messages for a list)
    messages_unread: int
    start: int
    tags: list[str]
    messages: list[Summary]


def message_of(summary: Summary, msg: EmailMessage, parsed: P.Parsed, return_path: str, arrived: float) -> Message:
    """The full record of a message parsed by ``capture.parse`` (``msg, parsed = P.parse(data)``)."""

    def part(a: P.PartInfo) -> Part:
        content = P.part_bytes(P.find_part(msg, a.part_id) or msg)
        return Part(a.part_id, a.filename, a.content_type, a.content_id, a.size, hashlib.md5(content).hexdigest(),
                    hashlib.sha1(content).hexdigest(), hashlib.sha256(content).hexdigest())

    lu = P.header_text(msg, "List-Unsubscribe")
    links, errors = unsubscribe.parse(lu) if lu else ([], "")
    return Message(summary=summary, return_path=return_path,
                   date=parsed.date if parsed.date is not None else arrived, list_unsubscribe=lu,
                   list_unsubscribe_links=links, list_unsubscribe_errors=errors,
                   list_unsubscribe_post=P.header_text(msg, "List-Unsubscribe-Post"), text=parsed.text,
                   html=parsed.html, inline=[part(a) for a in parsed.inline],
                   attachments=[part(a) for a in parsed.attachments])
