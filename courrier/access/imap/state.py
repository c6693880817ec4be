"""What the IMAP session and its command modules share: the RFC 3501 §3 states, the selected mailbox's view, and
the exception a handler ends its command with.

A leaf of ``courrier.access.imap``: the command modules (``cmd_*.py``) import it at top level, and the session
imports them through the command table — so no command module needs the session module at run time.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from courrier.mailbox import flags as F
from courrier.mailbox.api import Folder, Msg, Snapshot

NOT_AUTH, AUTH, SELECTED, LOGOUT = "not-authenticated", "authenticated", "selected", "logout"  # RFC 3501 §3
IDLE_RESCAN = 2.0  # seconds between rescans while IDLE, for changes made by other processes
IDLE_MAX = 1740.0  # RFC 2177 §3: clients re-issue IDLE within 29 minutes


class TaggedResult(Exception):
    """Raised by handlers to end a command early with NO or BAD."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def no(text: str) -> TaggedResult:
    return TaggedResult("NO", text)


class LineTooLong(Exception):
    pass


@dataclass
class Selected:
    name: str
    path: Folder  # the store's handle of the mailbox
    readonly: bool
    uidvalidity: int
    uids: list[int] = field(default_factory=list)
    msgs: dict[int, Msg] = field(default_factory=dict)
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    recent: set[int] = field(default_factory=set)
    keywords: frozenset[str] = frozenset()  # announced in the last FLAGS response (RFC 3501 §7.2.6)
    snap: Snapshot | None = None
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    unsubscribe: Callable[[], None] | None = None

    def seq_of(self, uid: int) -> int:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def shown_flags(self, uid: int) -> frozenset[str]:
        f = self.flags.get(uid, frozenset())
        return f | {F.RECENT} if uid in self.recent else f
