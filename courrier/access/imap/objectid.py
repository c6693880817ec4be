"""OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID, and the SEARCH keys EMAILID and THREADID (§6).

- MAILBOXID (§4): kept by the store beside the folder's messages (MaildirStore: a ``courrier-mailboxid`` file in the
  Maildir, made on first use), so it follows RENAME (§4.1: it MUST NOT change) and a folder deleted and created again
  gets a new one. A store without ``mailbox_id`` gets one derived from the name and UIDVALIDITY.
- EMAILID (§5.1): a digest of the message's octets. A COPY or MOVE keeps the octets, so the copy has the same
  EMAILID (§5.1 MUST); two messages with exactly the same content share one, which §5.1 allows.
- THREADID (§5.2): a digest of the thread's first message-id — the first of References, else In-Reply-To, else the
  message's own Message-ID — so replies share their thread's id and it never changes (it comes from the message's
  own header). A message with none of the three gets an id of its own (from its EMAILID).

Every objectid is 1*255(ALPHA / DIGIT / "_" / "-") (§4) with a letter first, as Dovecot and Cyrus write them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from courrier.mail import headers as H

if TYPE_CHECKING:
    from courrier.access.imap.fetch import Message
    from courrier.mailbox.api import Folder, MailStore

CAPABILITY = "OBJECTID"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # RFC 8474 §4 objectid
_MSGID = re.compile(rb"<([^<>\s]+)>")


def valid(objectid: str) -> bool:
    return bool(_ID.match(objectid))


def mailbox_id(store: MailStore, folder: Folder, uidvalidity: int, name: str) -> str:
    """RFC 8474 §4: the folder's MAILBOXID (blocking: in the store's threads)."""
    own = getattr(store, "mailbox_id", None)
    if own is not None:
        return own(folder)
    return "F" + hashlib.sha256(f"{uidvalidity}\x00{name}".encode()).hexdigest()[:24]


def email_id(data: bytes) -> str:
    """RFC 8474 §5.1 from the message's octets (CRLF, as served)."""
    return "M" + hashlib.sha256(data).hexdigest()[:24]


def thread_id(header: bytes, content: Callable[[], bytes]) -> str:
    """RFC 8474 §5.2 from the header section (CRLF); ``content`` gives the octets when no message-id names it."""
    h = H.read_header(header)
    for name in ("references", "in-reply-to", "message-id"):
        f = h.get(name)
        ids = _MSGID.findall(f.unfolded()) if f is not None else []
        if ids:
            return "T" + hashlib.sha256(ids[0]).hexdigest()[:24]
    return "T" + email_id(content())[1:]


def fetch_item(m: Message, name: str) -> bytes:
    """The FETCH data item ``EMAILID (id)`` / ``THREADID (id)`` (§7)."""
    if name == "EMAILID":
        return b"EMAILID (%s)" % email_id(m.data).encode()
    return b"THREADID (%s)" % thread_id(m.header, lambda: m.data).encode()
