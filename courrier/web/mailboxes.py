"""Server mode: the inspector over the accounts' Maildirs, through the mailbox layer IMAP uses (``courrier.mailbox``).

In capture mode the API reads the capture store (``store.CaptureSource``). In server mode the mail belongs to the
accounts, and the API answers the same Mailpit endpoints over one *mailbox* at a time, chosen by the admin
(``mailview.MailboxView``):

- ``?mailbox=bob@example.test/INBOX`` (account, ``/``, IMAP folder name: ``INBOX``, ``Sent``, ``Junk``,
  ``Archive.2026``…; the account alone means its INBOX) on the list, search, bulk read/delete, ``latest`` and the
  WebSocket. Without it: the logged-in admin account's own INBOX, so Mailpit clients work unchanged.
- Message IDs are ``<UIDVALIDITY>-<UID>-<base64url(account/folder)>``: stable while the folder's UIDVALIDITY lasts
  (RFC 3501 §2.3.1.1 — IMAP's own promise), and self-describing, so ``/api/v1/message/{ID}`` needs no parameter.
- Every read and change goes through ``MailStore.index`` (``MailIndex``), the index the IMAP and POP3 servers use:
  "read" is the ``\\Seen`` flag (a ``store_flags`` rename into ``cur/…:2,S``), delete is ``expunge``, tags are IMAP
  keywords; after each change ``MailStore.notify`` wakes the IMAP sessions (IDLE) watching that folder, so both
  sides agree at once. The index methods block: this module's methods run on the store's thread pool.

Summaries (subject, addresses, attachment count, snippet) are parsed once per message and kept in a bounded LRU:
a Maildir message never changes, only its flags, which are read from the index each time. Search: ``mailsearch``.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from courrier import log
from courrier.capture import parse as P
from courrier.capture.envelope import CapturedEnvelope
from courrier.capture.records import Address, Summary, addresses
from courrier.mailbox import flags as F
from courrier.mailbox import names as folders
from courrier.mailbox.api import Folder, Msg, Snapshot, header_end_lf

if TYPE_CHECKING:
    from courrier.accounts import Accounts
    from courrier.mailbox.api import MailStore

SUMMARY_BYTES = 1 << 20  # a summary (attachments, snippet) is parsed from at most this much of the file
CACHE_ENTRIES = 50000  # parsed summaries (a few hundred bytes each)
TEXT_CACHE_BYTES = 32 << 20  # decoded body texts kept for plain-word searches
MAX_ID = 1024
NO_ENVELOPE = "mailbox"  # CapturedEnvelope.listener when the file has no Return-Path (IMAP APPEND, a copy)
KEYWORD = re.compile(r"^[^\x00-\x20\x7f(){%*\"\\\]]{1,100}$")  # RFC 3501 §9 flag-keyword = atom
_ID = re.compile(r"^([0-9]{1,10})-([0-9]{1,10})-([A-Za-z0-9_-]+)$", re.ASCII)
_RECEIVED = re.compile(r"^from (\S+) \(\S+ \[(?:IPv6:)?([^\]]+)\]\)")


class MailboxError(ValueError):
    """A mailbox parameter that cannot name a mailbox (the API answers 400 with this text)."""


@dataclass(frozen=True)
class Mailbox:
    account: str  # lower-case local@domain
    folder: str  # IMAP name, "INBOX" for the account's own mailbox
    path: Folder  # the store's handle of it

    @property
    def name(self) -> str:
        return f"{self.account}/{self.folder}"


def encode_id(mb: Mailbox, uidvalidity: int, uid: int) -> str:
    tag = base64.urlsafe_b64encode(mb.name.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{uidvalidity}-{uid}-{tag}"


def decode_id(msg_id: str) -> tuple[str, int, int] | None:
    """``<UIDVALIDITY>-<UID>-<base64url(mailbox)>`` → (mailbox name, UIDVALIDITY, UID); None when malformed."""
    if len(msg_id) > MAX_ID:
        return None
    m = _ID.match(msg_id)
    if m is None:
        return None
    tag = m.group(3)
    try:
        name = base64.urlsafe_b64decode(tag + "=" * (-len(tag) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii").rstrip("=") != tag:
        return None  # one spelling per message: no padding or stray bits
    return name, int(m.group(1)), int(m.group(2))


@dataclass
class Info:
    """What a summary shows of one message, parsed once (the file never changes)."""

    message_id: str = ""
    subject: str = ""
    date: float | None = None
    from_: dict[str, str] = field(default_factory=lambda: {"Name": "", "Address": ""})
    to: list[dict[str, str]] = field(default_factory=list)
    cc: list[dict[str, str]] = field(default_factory=list)
    bcc: list[dict[str, str]] = field(default_factory=list)
    reply_to: list[dict[str, str]] = field(default_factory=list)
    return_path: str | None = None  # None: no Return-Path field (not delivered over SMTP)
    delivered_to: str = ""
    received: str = ""  # our own topmost Received field, unfolded
    attachments: int = 0
    inline: int = 0
    snippet: str = ""
    full: bool = False  # parsed from the message (attachments, snippet), not from the header section alone
    error: str = ""  # why the message could be read only in part (capture.parse: MIME bounds, a part that failed)

    def addresses(self, key: str) -> str:
        lists = {"from": [self.from_], "to": self.to, "cc": self.cc, "bcc": self.bcc, "reply-to": self.reply_to,
                 "addressed": [self.from_, *self.to, *self.cc, *self.bcc, *self.reply_to]}[key]
        return " ".join(f"{a['Name']} {a['Address']}" for a in lists).casefold()


def parse_info(head: bytes, body: bytes | None) -> Info:
    """Header section (and the start of the file, for attachments and snippet) → Info."""
    msg, p = P.parse(body if body is not None else head)
    info = Info(message_id=p.message_id, subject=p.subject, date=p.date, from_=p.from_, to=p.to, cc=p.cc,
                reply_to=p.reply_to)
    rp = P.raw_values(msg, "Return-Path")
    info.return_path = P.decode_words(rp[0]).strip().strip("<>").strip() if rp else None
    dt = P.addresses(msg, "Delivered-To")
    info.delivered_to = dt[0]["Address"] if dt else ""
    rcv = P.raw_values(msg, "Received")
    info.received = " ".join(rcv[0].split()) if rcv else ""
    listed = {a["Address"].lower() for a in p.to + p.cc}
    info.bcc = P.addresses(msg, "Bcc")
    if info.delivered_to and info.delivered_to.lower() not in listed | {a["Address"].lower() for a in info.bcc}:
        info.bcc.append({"Name": "", "Address": info.delivered_to})  # as Mailpit: an envelope rcpt not in To/Cc
    if body is not None:
        info.attachments, info.inline, info.snippet = len(p.attachments), len(p.inline), p.snippet()
        info.full = True
        info.error = p.error
    return info


def keywords(flags: Iterable[str]) -> list[str]:
    """IMAP keywords (flags without a backslash): Mailpit's tags."""
    return sorted((f for f in flags if not f.startswith("\\")), key=str.casefold)


class MailboxSource:
    """The accounts' mailboxes for the web layer: parsing of ``?mailbox=``, IDs, cached summaries, search."""

    def __init__(self, store: MailStore, accounts: Accounts) -> None:
        self.store = store
        self.accounts = accounts
        self._cache: OrderedDict[tuple[str, int, int], Info] = OrderedDict()
        self._texts: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._text_bytes = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ naming

    def parse(self, name: str) -> Mailbox:
        """``account[/folder]`` → Mailbox (syntax and path safety only; existence is checked in ``check``)."""
        account, _, folder = name.strip().partition("/")
        account = account.strip().lower()
        folder = folders.normalize(folder.strip() or "INBOX")
        try:
            root = self.store.account_root(account)
            path = self.store.folder(root, folder)
        except (ValueError, folders.FolderError) as e:
            raise MailboxError(f"mailbox: {e}") from None
        return Mailbox(account, folder, path)

    def check(self, mb: Mailbox) -> bool:
        """The account exists and so does the folder (an INBOX not yet delivered to counts as empty). Blocking."""
        if self.accounts.get(mb.account) is None:
            return False
        return folders.is_inbox(mb.folder) or self.store.folder_exists(self.store.account_root(mb.account), mb.folder)

    def mailboxes(self) -> list[dict[str, Any]]:
        """Every account with its folders, INBOX first (blocking)."""
        return [{"Address": a.address, "Folders": self.store.list_folders(self.store.account_root(a.address))}
                for a in self.accounts.list()]

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.store.run(fn, *args)

    # ------------------------------------------------------------------ messages (blocking)

    def snapshot(self, mb: Mailbox) -> Snapshot:
        return self.store.index.sync(mb.path)

    def find(self, msg_id: str) -> tuple[Mailbox, Msg] | None:
        """The message an ID names, or None (malformed, unknown account, expunged, UIDVALIDITY changed)."""
        got = decode_id(msg_id)
        if got is None:
            return None
        name, uidvalidity, uid = got
        try:
            mb = self.parse(name)
        except MailboxError:
            return None
        if not self.check(mb):
            return None
        snap = self.snapshot(mb)
        m = by_uid(snap, uid)
        return (mb, m) if m is not None and snap.uidvalidity == uidvalidity else None

    def _head(self, mb: Mailbox, m: Msg) -> bytes | None:
        return self.store.index.header(mb.path, m)

    def head_of_file(self, mb: Mailbox, m: Msg, limit: int) -> bytes | None:
        """The first ``limit`` octets of the stored file (LF), without reading the rest."""
        return self.store.index.read_head(mb.path, m, limit)

    def info(self, mb: Mailbox, uidvalidity: int, m: Msg, *, full: bool = True) -> Info | None:
        """The message's Info; ``full=False`` is enough for header-only searches (no attachment count, snippet).
        None when the file cannot be read: logged with the message's ID, and the message is skipped — one message
        never fails a list or a search of its mailbox."""
        try:
            return self._info(mb, uidvalidity, m, full)
        except Exception as e:  # noqa: BLE001
            log.event("http.message_unreadable", level="error", id=encode_id(mb, uidvalidity, m.uid),
                      mailbox=mb.name, error=repr(e)[:300])
            return None

    def _info(self, mb: Mailbox, uidvalidity: int, m: Msg, full: bool) -> Info | None:
        key = (self.store.index.key(mb.path), uidvalidity, m.uid)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None and (hit.full or not full):
            return hit
        if full:
            data = self.head_of_file(mb, m, SUMMARY_BYTES)
            info = None if data is None else parse_info(data[:header_end_lf(data)], data)
        else:  # the header section alone, from the index's own cache
            head = self._head(mb, m)
            info = None if head is None else parse_info(head, None)
        if info is not None:
            with self._lock:
                self._cache[key] = info
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return info

    def body_text(self, mb: Mailbox, uidvalidity: int, m: Msg, limit: int) -> str:
        """The decoded text a plain-word search looks into (text, HTML as text, attachment names), case-folded,
        from the first ``limit`` octets; kept while the texts held stay under ``TEXT_CACHE_BYTES``."""
        key = (self.store.index.key(mb.path), uidvalidity, m.uid)
        with self._lock:
            hit = self._texts.get(key)
            if hit is not None:
                self._texts.move_to_end(key)
                return hit
        try:
            data = self.head_of_file(mb, m, limit)
        except OSError as e:
            log.event("http.message_unreadable", level="error", id=encode_id(mb, uidvalidity, m.uid),
                      mailbox=mb.name, error=repr(e)[:300])
            return ""
        if data is None:
            return ""
        _, p = P.parse(data)
        text = "\n".join((p.text, p.html_text, " ".join(a.filename for a in p.attachments))).casefold()
        with self._lock:
            self._texts[key] = text
            self._text_bytes += len(text)
            while self._text_bytes > TEXT_CACHE_BYTES and self._texts:
                self._text_bytes -= len(self._texts.popitem(last=False)[1])
        return text

    def summary(self, mb: Mailbox, snap: Snapshot, m: Msg) -> Summary | None:
        info = self.info(mb, snap.uidvalidity, m)
        if info is None:
            return None
        return Summary(
            id=encode_id(mb, snap.uidvalidity, m.uid), message_id=info.message_id, read=F.SEEN in m.flags,
            from_=Address.of(info.from_), to=addresses(info.to), cc=addresses(info.cc), bcc=addresses(info.bcc),
            reply_to=addresses(info.reply_to), subject=info.subject, created=m.internaldate, username="",
            tags=keywords(m.flags), size=m.size, attachments=info.attachments, snippet=info.snippet)

    def read(self, mb: Mailbox, m: Msg) -> bytes | None:
        return self.store.index.read(mb.path, m)

    # ------------------------------------------------------------------ changes (blocking; callers notify)

    def set_seen(self, mb: Mailbox, snap: Snapshot, uids: Iterable[int], seen: bool) -> int:
        by_uid = {m.uid: m for m in snap.messages}
        changes = []
        for uid in uids:
            m = by_uid.get(uid)
            if m is not None and (F.SEEN in m.flags) != seen:
                changes.append((uid, m.flags | {F.SEEN} if seen else m.flags - {F.SEEN}))
        return len(self.store.index.store_flags(mb.path, changes)) if changes else 0

    def set_keywords(self, mb: Mailbox, snap: Snapshot, change: Callable[[Msg], frozenset[str] | None]) -> int:
        changes = [(m.uid, new) for m in snap.messages if (new := change(m)) is not None and new != m.flags]
        return len(self.store.index.store_flags(mb.path, changes)) if changes else 0

    def expunge(self, mb: Mailbox, uids: Iterable[int]) -> int:
        return len(self.store.index.expunge(mb.path, uids))


def by_uid(snap: Snapshot, uid: int) -> Msg | None:
    i = bisect_left(snap.messages, uid, key=lambda m: m.uid)
    return snap.messages[i] if i < len(snap.messages) and snap.messages[i].uid == uid else None


def envelope_of(info: Info, m: Msg) -> CapturedEnvelope:
    """The SMTP envelope as local delivery recorded it: Return-Path (RFC 5321 §4.4), Delivered-To, and our own
    Received field (client, HELO, TLS, authenticated sender, queue id). A file without Return-Path (IMAP APPEND, a
    Sent copy) has no envelope: listener ``NO_ENVELOPE``."""
    env = CapturedEnvelope(id="", received=m.internaldate, mail_from=info.return_path or "",
                           rcpts=[info.delivered_to] if info.delivered_to else [],
                           listener="smtp" if info.return_path is not None else NO_ENVELOPE)
    r = info.received
    if "(courrier)" in r:
        if mt := _RECEIVED.search(r):
            env.helo, env.client = mt.group(1), mt.group(2)
        if mt := re.search(r"\(using (\S+) with cipher (\S+)", r):
            env.tls = f"{mt.group(1)} {mt.group(2)}"
        if mt := re.search(r"\(authenticated sender: ([^)\s]+)\)", r):
            env.user = mt.group(1)
        if mt := re.search(r" with \S+ id (\S+)", r):
            env.qid = mt.group(1).rstrip(";")
    return env


