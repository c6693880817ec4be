"""The filter interface: what a spam or client filter is asked, and what it answers.

A filter is asked at two points of an SMTP transaction, the two a milter (Sendmail's and Postfix's filter protocol,
which rspamd speaks) also acts on most: once about the client (``check_client``, milter's connect stage — a DNSBL
acts here) and once about the whole message at the end of DATA (``check``, milter's end-of-message stage — spamd
acts here). Both answer a :class:`Verdict`: accept, junk (file to the recipient's Junk folder), reject or tempfail
(with the SMTP reply to give), and header fields to add.

A filter may fail — a scanner down, a DNS timeout. That is never a reason to refuse mail: the chain
(``courrier.filter.chain``) bounds every call in time and turns a failure into "accept, unscanned", logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply


class Action(StrEnum):
    ACCEPT = "accept"
    JUNK = "junk"  # accept, filed to the Junk folder
    REJECT = "reject"  # a 5xx reply
    TEMPFAIL = "tempfail"  # a 4xx reply: the client tries again later


@dataclass(frozen=True)
class Verdict:
    """One filter's answer, or the chain's merged answer.

    ``headers``: fields to add, (name, value) in order, values already folded with LF + TAB where long.
    ``reply``: the refusal for REJECT and TEMPFAIL. ``drop_fields``: header fields of the message (0-based, counted
    as ``courrier.delivery.local.without_fields`` counts them) to leave out of stored copies — forged X-Spam-* fields
    a scanner's own replace (SpamAssassin removes them the same way when it marks up a message).
    """

    action: Action = Action.ACCEPT
    headers: tuple[tuple[str, str], ...] = ()
    reply: Reply | None = None
    drop_fields: tuple[int, ...] = ()
    note: str = ""  # for the log line: why

    def __post_init__(self) -> None:
        if self.action in (Action.REJECT, Action.TEMPFAIL) and self.reply is None:
            raise ValueError(f"a {self.action} verdict needs a reply")

    @property
    def refused(self) -> bool:
        return self.action in (Action.REJECT, Action.TEMPFAIL)

    @property
    def folder(self) -> str | None:
        return "Junk" if self.action is Action.JUNK else None

    def header_block(self) -> bytes:
        """The fields to add as stored header lines (LF-terminated: copies go to Maildir)."""
        return "".join(f"{name}: {value}\n" for name, value in self.headers).encode("utf-8")


ACCEPT = Verdict()


class Filter(Protocol):
    """A filter the MX role runs. ``name`` appears in logs; both checks may raise or hang: the chain bounds them."""

    name: str

    async def check_client(self, hop: Hop) -> Verdict:
        """The connecting client (``hop.client_ip``), before any recipient is accepted."""
        ...

    async def check(self, envelope: Envelope, hop: Hop, message: ReceivedMessage) -> Verdict:
        """The whole message at the end of DATA, before the 250: a refusal here means nothing was accepted."""
        ...


class MessageFilter:
    """Base for a filter that acts on messages only (a content scanner): every client is accepted."""

    async def check_client(self, hop: Hop) -> Verdict:
        return ACCEPT


class ClientFilter:
    """Base for a filter that acts on the client only (a blocklist): every message is accepted."""

    async def check(self, envelope: Envelope, hop: Hop, message: ReceivedMessage) -> Verdict:
        return ACCEPT


_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def field_indices(head: bytes, names: frozenset[str]) -> tuple[int, ...]:
    """0-based numbers of the header fields of ``head`` (the message's first octets) whose name is in ``names``
    (lower case). A field is a line plus its continuation lines (RFC 5322 §2.2.3); lines are split at LF, so the
    numbering matches ``courrier.delivery.local.without_fields``. Only a complete header section counts."""
    end = head.find(b"\r\n\r\n")
    if end < 0:
        return ()
    out = []
    index = -1
    for line in re.findall(rb"[^\n]*\n", head[:end + 2]):
        if line[:1] in (b" ", b"\t") and index >= 0:
            continue
        index += 1
        m = _FIELD_NAME.match(line)
        if m and m.group(1).decode("ascii").lower() in names:
            out.append(index)
    return tuple(out)
