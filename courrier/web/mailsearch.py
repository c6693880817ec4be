"""Mailpit's search syntax over one folder of an account (server mode), without a full-text index.

Capture mode compiles queries to SQL over its FTS5 index (``courrier.capture.search``). The accounts' Maildirs have
no such index — only UIDs and flags (``courrier.mailbox.api.FolderIndex``) — so a query is evaluated here, message by message,
newest first, with the same tokenizer (quoted phrases, ``-``/``!`` negation, ``key:value``):

    from: to: cc: bcc: reply-to: addressed: subject:   substring of the decoded header (case-insensitive)
    message-id:                                        substring, without the angle brackets
    tag:  is:tagged                                    IMAP keywords (the tags of server mode)
    is:read  is:unread                                 the \\Seen flag
    has:attachment(s)  has:inline(s)                        from the message's parsed summary
    before:  after:                                    the arrival time (IMAP INTERNALDATE), inclusive
    larger:  smaller:                                  RFC822.SIZE
    words, "phrases"                                   subject, addresses, then the decoded body text

What bounds a search: headers come from the index's in-memory header cache, the parsed headers, summaries and body
texts from the source's bounded LRUs (so a second search of a mailbox is mostly lookups); a plain word looks into the bodies (text, HTML as text, attachment names) of the newest ``BODY_SCAN_MAX``
messages only, reading at most ``BODY_BYTES`` of each. Blocking: run it on the store's thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from courrier.capture.search import QueryError, ms, parse_size, parse_when, tokenize
from courrier.mailbox import flags as F
from courrier.mailbox.api import Msg, Snapshot
from courrier.web.mailboxes import Info, Mailbox, keywords

if TYPE_CHECKING:
    from courrier.web.mailboxes import MailboxSource

BODY_BYTES = 1 << 20  # plain-word search reads at most this much of each message
BODY_SCAN_MAX = 2000  # plain-word search looks into the bodies of the newest this-many messages (headers: all)


def matching(src: MailboxSource, mb: Mailbox, snap: Snapshot, query: str) -> list[Msg]:
    """The folder's messages matching a Mailpit query, newest first."""
    terms = [(neg, _term(key, value)) for neg, key, value in tokenize(query)]
    out = []
    for n, m in enumerate(reversed(snap.messages)):
        ctx = _Ctx(src, mb, snap.uidvalidity, m, body_allowed=n < BODY_SCAN_MAX)
        if all(test(ctx) != neg for neg, test in terms):
            out.append(m)
    return out


class _Ctx:
    """One message under test: its header and summary are parsed only when a term needs them."""

    def __init__(self, src: MailboxSource, mb: Mailbox, uidvalidity: int, m: Msg, body_allowed: bool) -> None:
        self.src, self.mb, self.uidvalidity, self.m, self.body_allowed = src, mb, uidvalidity, m, body_allowed
        self._head: Info | None = None

    def head(self) -> Info:
        if self._head is None:
            self._head = self.src.info(self.mb, self.uidvalidity, self.m, full=False) or Info()
        return self._head

    def full(self) -> Info:
        return self.src.info(self.mb, self.uidvalidity, self.m) or Info()

    def text_match(self, text: str) -> bool:
        h = self.head()
        if text in h.subject.casefold() or text in h.addresses("from") or text in h.addresses("addressed"):
            return True
        if not self.body_allowed:
            return False
        return text in self.src.body_text(self.mb, self.uidvalidity, self.m, BODY_BYTES)


def _term(key: str, value: str) -> Callable[[_Ctx], bool]:
    """One term → a test; a key we do not know is searched as plain text, as Mailpit does."""
    v = value.casefold()
    if key in ("from", "to", "cc", "bcc", "reply-to", "addressed"):
        return lambda c: v in c.head().addresses(key)
    if key == "subject":
        return lambda c: v in c.head().subject.casefold()
    if key == "message-id":
        want = value.strip().strip("<>").casefold()
        return lambda c: want in c.head().message_id.casefold()
    if key == "tag":
        return lambda c: v in {k.casefold() for k in keywords(c.m.flags)}
    if key == "is" and v in ("read", "unread", "tagged"):
        return {"read": lambda c: F.SEEN in c.m.flags, "unread": lambda c: F.SEEN not in c.m.flags,
                "tagged": lambda c: bool(keywords(c.m.flags))}[v]
    if key == "has" and v in ("attachment", "attachments", "inline", "inlines"):
        return (lambda c: c.full().inline > 0) if v.startswith("inline") else (lambda c: c.full().attachments > 0)
    try:
        if key in ("before", "after"):
            t = ms(parse_when(value))  # inclusive to the millisecond, as Mailpit's ``<=``/``>=``
            return (lambda c: ms(c.m.internaldate) <= t) if key == "before" else (lambda c: ms(c.m.internaldate) >= t)
        if key in ("larger", "smaller"):
            s = parse_size(value)
            return (lambda c: c.m.size > s) if key == "larger" else (lambda c: c.m.size < s)
    except QueryError:
        raise
    except ValueError:
        pass
    text = f"{key}:{value}".casefold() if key else v
    return lambda c: c.text_match(text)
