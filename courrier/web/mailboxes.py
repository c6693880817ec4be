"""Server mode: the inspector over the accounts' Maildirs, through the mailbox layer IMAP uses (``courrier.mailbox``).

In capture mode the API reads the capture store (``store.MessageSource``). In server mode the mail belongs to the
accounts, and the API answers the same Mailpit endpoints over one *mailbox* at a time, chosen by the admin:

- ``?mailbox=bob@example.test/INBOX`` (account, ``/``, IMAP folder name: ``INBOX``, ``Sent``, ``Junk``,
  ``Archive.2026``…; the account alone means its INBOX) on the list, search, bulk read/delete, ``latest`` and the
  WebSocket. Without it: the logged-in admin account's own INBOX, so Mailpit clients work unchanged.
- Message IDs are ``<UIDVALIDITY>-<UID>-<base64url(account/folder)>``: stable while the folder's UIDVALIDITY lasts
  (RFC 3501 §2.3.1.1 — IMAP's own promise), and self-describing, so ``/api/v1/message/{ID}`` needs no parameter.
- Every read and change goes through ``MailStore.index`` (``MailIndex``), the index the IMAP and POP3 servers use:
  "read" is the ``\\Seen`` flag (a ``store_flags`` rename into ``cur/…:2,S``), delete is ``expunge``, tags are IMAP
  keywords; after each change ``MailStore.notify`` wakes the IMAP sessions (IDLE) watching that folder, so both
  sides agree at once. The index methods block: they run on the store's thread pool.

Search accepts Mailpit's syntax, evaluated in Python over the messages' header sections (kept in memory by the
index) and, for plain words, over the decoded text of the newest ``BODY_SCAN_MAX`` messages (first ``BODY_BYTES`` of
each): ``from: to: cc: bcc: reply-to: addressed: subject: message-id: tag: is:read|unread|tagged
has:attachment|inline before: after: larger: smaller:``, quoted phrases, ``-``/``!`` negation. Matching is
case-insensitive substring matching (no word stemming or prefix index as in capture mode's FTS5).

Summaries (subject, addresses, attachment count, snippet) are parsed once per message and kept in a bounded LRU:
a Maildir message never changes, only its flags, which are read from the index each time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email
import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from courrier import __version__, log
from courrier.capture import parse as P
from courrier.capture.envelope import CapturedEnvelope
from courrier.capture.search import parse_size, parse_when, tokenize
from courrier.capture.store import iso
from courrier.mailbox import flags as F
from courrier.mailbox import folders
from courrier.mailbox.index import Msg, Snapshot, header_end_lf
from courrier.web.store import SearchError, apply_tz

if TYPE_CHECKING:
    from courrier.accounts import Accounts
    from courrier.mailbox.store import MailStore

SUMMARY_BYTES = 1 << 20  # a summary (attachments, snippet) is parsed from at most this much of the file
BODY_BYTES = 1 << 20  # plain-word search reads at most this much of each message
BODY_SCAN_MAX = 2000  # plain-word search looks into the bodies of the newest this-many messages (headers: all)
CACHE_ENTRIES = 20000
MAX_ID = 1024
NO_ENVELOPE = "mailbox"  # CapturedEnvelope.listener when the file has no Return-Path (IMAP APPEND, a copy)
_KEYWORD = re.compile(r"^[^\x00-\x20\x7f(){%*\"\\\]]{1,100}$")  # RFC 3501 §9 flag-keyword = atom
_RECEIVED = re.compile(r"^from (\S+) \(\S+ \[(?:IPv6:)?([^\]]+)\]\)")


class MailboxError(ValueError):
    """A mailbox parameter that cannot name a mailbox (the API answers 400 with this text)."""


@dataclass(frozen=True)
class Mailbox:
    account: str  # lower-case local@domain
    folder: str  # IMAP name, "INBOX" for the account's Maildir itself
    path: Path

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
    parts = msg_id.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    try:
        name = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return name, int(parts[0]), int(parts[1])


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

    def addresses(self, key: str) -> str:
        lists = {"from": [self.from_], "to": self.to, "cc": self.cc, "bcc": self.bcc, "reply-to": self.reply_to,
                 "addressed": self.to + self.cc + self.bcc}[key]
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
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ naming

    def parse(self, name: str) -> Mailbox:
        """``account[/folder]`` → Mailbox (syntax and path safety only; existence is checked in ``check``)."""
        account, _, folder = name.strip().partition("/")
        account = account.strip().lower()
        folder = folders.normalize(folder.strip() or "INBOX")
        try:
            root = self.store.maildir_for(account)
            path = folders.path_for(root, folder)
        except (ValueError, folders.FolderError) as e:
            raise MailboxError(f"mailbox: {e}") from None
        return Mailbox(account, folder, path)

    def check(self, mb: Mailbox) -> bool:
        """The account exists and so does the folder (an INBOX not yet delivered to counts as empty). Blocking."""
        if self.accounts.get(mb.account) is None:
            return False
        return folders.is_inbox(mb.folder) or (mb.path / "cur").is_dir()

    def mailboxes(self) -> list[dict[str, Any]]:
        """Every account with its folders, INBOX first (blocking)."""
        return [{"Address": a.address, "Folders": folders.list_names(self.store.maildir_for(a.address))}
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
        m = _by_uid(snap, uid)
        return (mb, m) if m is not None and snap.uidvalidity == uidvalidity else None

    def _head(self, mb: Mailbox, m: Msg) -> bytes | None:
        return self.store.index.header(mb.path, m)

    def _start(self, mb: Mailbox, m: Msg, limit: int) -> bytes | None:
        """The first ``limit`` octets of the stored file (LF), without reading the rest."""
        try:
            with open(mb.path / m.file, "rb") as fh:
                return fh.read(limit)
        except FileNotFoundError:  # flags changed (renamed) meanwhile: the index finds it again
            data = self.store.index.read(mb.path, m)
            return None if data is None else data[:limit]

    def info(self, mb: Mailbox, uidvalidity: int, m: Msg, *, full: bool = True) -> Info | None:
        """The message's Info; ``full=False`` is enough for header-only searches (no attachment count, snippet)."""
        key = (self.store.index.key(mb.path), uidvalidity, m.uid)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:  # only full parses are kept
            return hit
        if not full:  # the header section alone, from the index's own cache
            head = self._head(mb, m)
            return None if head is None else parse_info(head, None)
        data = self._start(mb, m, SUMMARY_BYTES)
        if data is None:
            return None
        info = parse_info(data[:header_end_lf(data)], data)
        with self._lock:
            self._cache[key] = info
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return info

    def summary(self, mb: Mailbox, snap: Snapshot, m: Msg) -> dict[str, Any] | None:
        """Mailpit's MessageSummary."""
        info = self.info(mb, snap.uidvalidity, m)
        if info is None:
            return None
        return {
            "ID": encode_id(mb, snap.uidvalidity, m.uid), "MessageID": info.message_id, "Read": F.SEEN in m.flags,
            "From": info.from_, "To": info.to, "Cc": info.cc, "Bcc": info.bcc, "ReplyTo": info.reply_to,
            "Subject": info.subject, "Created": iso(m.internaldate), "Username": "", "Tags": keywords(m.flags),
            "Size": m.size, "Attachments": info.attachments, "Snippet": info.snippet,
        }

    def read(self, mb: Mailbox, m: Msg) -> bytes | None:
        return self.store.index.read(mb.path, m)

    # ------------------------------------------------------------------ search (blocking)

    def matching(self, mb: Mailbox, snap: Snapshot, query: str) -> list[Msg]:
        """The folder's messages matching a Mailpit query, newest first (see the module docstring)."""
        terms = [(neg, self._term(key, value)) for neg, key, value in tokenize(query)]
        out = []
        for n, m in enumerate(reversed(snap.messages)):
            ctx = _Ctx(self, mb, snap.uidvalidity, m, body_allowed=n < BODY_SCAN_MAX)
            if all(test(ctx) != neg for neg, test in terms):
                out.append(m)
        return out

    def _term(self, key: str, value: str) -> Callable[[_Ctx], bool]:
        v = value.casefold()
        if key in ("from", "to", "cc", "bcc", "reply-to", "addressed"):
            return lambda c: v in c.head().addresses(key)
        if key == "subject":
            return lambda c: v in c.head().subject.casefold()
        if key == "message-id":
            want = value.strip().strip("<>")
            return lambda c: c.head().message_id == want
        if key == "tag":
            return lambda c: v in {k.casefold() for k in keywords(c.m.flags)}
        if key == "is" and v in ("read", "unread", "tagged"):
            return {"read": lambda c: F.SEEN in c.m.flags, "unread": lambda c: F.SEEN not in c.m.flags,
                    "tagged": lambda c: bool(keywords(c.m.flags))}[v]
        if key == "has" and v in ("attachment", "attachments", "inline"):
            return (lambda c: c.full().inline > 0) if v == "inline" else (lambda c: c.full().attachments > 0)
        try:
            if key in ("before", "after"):
                t = parse_when(value)
                return (lambda c: c.m.internaldate < t) if key == "before" else (lambda c: c.m.internaldate > t)
            if key in ("larger", "smaller"):
                s = parse_size(value)
                return (lambda c: c.m.size > s) if key == "larger" else (lambda c: c.m.size < s)
        except ValueError:
            pass
        text = f"{key}:{value}".casefold() if key else v
        return lambda c: c.text_match(text)

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


class _Ctx:
    """One message under test in a search: its Info is parsed only when a term needs it."""

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
        data = self.src._start(self.mb, self.m, BODY_BYTES)
        if data is None:
            return False
        _, p = P.parse(data)
        return any(text in t.casefold() for t in (p.text, p.html_text, " ".join(a.filename for a in p.attachments)))


def _by_uid(snap: Snapshot, uid: int) -> Msg | None:
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


class MailboxView:
    """The API's message source for one request: the selected mailbox, and any message by its ID.

    Same methods as ``store.MessageSource`` (capture mode), so the API modules serve both modes alike."""

    def __init__(self, src: MailboxSource, mailbox: str | None, default_account: str | None) -> None:
        self.src = src
        name = mailbox if mailbox else (f"{default_account}/INBOX" if default_account else None)
        if name is None:
            raise HTTPException(400, "mailbox: required in server mode (e.g. ?mailbox=bob@example.test/INBOX)")
        try:
            self.mb = src.parse(name)
        except MailboxError as e:
            raise HTTPException(400, str(e)) from None

    async def _checked(self) -> Mailbox:
        if not await self.src.run(self.src.check, self.mb):
            raise HTTPException(404, f"mailbox not found: {self.mb.name}")
        return self.mb

    async def mailbox(self) -> Mailbox:
        """The selected mailbox, once its account and folder are known to exist (404 otherwise)."""
        return await self._checked()

    async def _find(self, msg_id: str) -> tuple[Mailbox, Msg] | None:
        return await self.src.run(self.src.find, msg_id)

    # ------------------------------------------------------------------ reading

    async def page(self, query: str | None, start: int, limit: int, tz: str | None = None) -> dict[str, Any]:
        mb = await self._checked()
        q = apply_tz(query, tz) if query is not None else None
        src = self.src

        def run() -> dict[str, Any]:
            snap = src.snapshot(mb)
            total = len(snap.messages)
            unread = sum(1 for m in snap.messages if F.SEEN not in m.flags)
            found = list(reversed(snap.messages)) if q is None else src.matching(mb, snap, q)
            m_unread = unread if q is None else sum(1 for m in found if F.SEEN not in m.flags)
            msgs = [s for s in (src.summary(mb, snap, m) for m in found[start:start + limit]) if s is not None]
            tags = sorted({k for m in snap.messages for k in keywords(m.flags)}, key=str.casefold)
            return {"total": total, "unread": unread, "messages_count": len(found), "messages_unread": m_unread,
                    "start": start, "tags": tags, "messages": msgs}

        return await src.run(run)

    async def resolve(self, msg_id: str) -> str | None:
        if msg_id == "latest":
            mb = await self._checked()
            snap = await self.src.run(self.src.snapshot, mb)
            return encode_id(mb, snap.uidvalidity, snap.messages[-1].uid) if snap.messages else None
        return msg_id if await self._find(msg_id) is not None else None

    async def _load(self, msg_id: str) -> tuple[Mailbox, Msg, bytes] | None:
        def run() -> tuple[Mailbox, Msg, bytes] | None:
            found = self.src.find(msg_id)
            if found is None:
                return None
            data = self.src.read(*found)
            return None if data is None else (*found, data)

        return await self.src.run(run)

    async def message(self, msg_id: str) -> dict[str, Any] | None:
        src = self.src

        def run() -> dict[str, Any] | None:
            found = src.find(msg_id)
            if found is None:
                return None
            mb, m = found
            data = src.read(mb, m)
            snap = src.snapshot(mb)
            s = src.summary(mb, snap, m)
            if data is None or s is None:
                return None
            info = src.info(mb, snap.uidvalidity, m)
            msg, p = P.parse(data)

            def att(a: P.PartInfo) -> dict[str, Any]:
                import hashlib

                content = P.part_bytes(P.find_part(msg, a.part_id) or msg)
                return {"PartID": a.part_id, "FileName": a.filename, "ContentType": a.content_type,
                        "ContentID": a.content_id, "Size": a.size,
                        "Checksums": {"MD5": hashlib.md5(content).hexdigest(),
                                      "SHA1": hashlib.sha1(content).hexdigest(),
                                      "SHA256": hashlib.sha256(content).hexdigest()}}

            lu = P.header_text(msg, "List-Unsubscribe")
            return {
                "ID": s["ID"], "MessageID": s["MessageID"], "From": s["From"], "To": s["To"], "Cc": s["Cc"],
                "Bcc": s["Bcc"], "ReplyTo": s["ReplyTo"], "ReturnPath": (info.return_path if info else "") or "",
                "Subject": s["Subject"],
                "ListUnsubscribe": {"Header": lu, "Links": re.findall(r"<([^>]+)>", lu), "Errors": "",
                                    "HeaderPost": P.header_text(msg, "List-Unsubscribe-Post")},
                "Date": iso(p.date if p.date is not None else m.internaldate), "Tags": s["Tags"], "Username": "",
                "Text": p.text, "HTML": p.html, "Size": s["Size"],
                "Inline": [att(a) for a in p.inline], "Attachments": [att(a) for a in p.attachments],
            }

        return await src.run(run)

    async def summary(self, msg_id: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            found = self.src.find(msg_id)
            return None if found is None else self.src.summary(found[0], self.src.snapshot(found[0]), found[1])

        return await self.src.run(run)

    async def raw(self, msg_id: str, trace: bool = False) -> bytes | None:
        """The stored file (our trace fields included: they are part of the delivered message), CRLF."""
        got = await self._load(msg_id)
        return None if got is None else got[2].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    async def headers(self, msg_id: str) -> dict[str, list[str]] | None:
        got = await self._load(msg_id)
        if got is None:
            return None
        data = got[2]
        msg = email.message_from_bytes(data[:header_end_lf(data)])
        out: dict[str, list[str]] = {}
        for k, v in msg.raw_items():
            out.setdefault(k, []).append(" ".join(P.decode_words(str(v)).split()))
        return out

    async def part(self, msg_id: str, part_id: str) -> tuple[str, str, bytes] | None:
        got = await self._load(msg_id)
        if got is None:
            return None
        part = P.find_part(P.parse_bytes(got[2]), part_id)
        if part is None:
            return None
        try:
            fname = part.get_filename() or ""
        except Exception:
            fname = ""
        return part.get_content_type(), fname, P.part_bytes(part)

    async def envelope(self, msg_id: str) -> CapturedEnvelope | None:
        def run() -> CapturedEnvelope | None:
            found = self.src.find(msg_id)
            if found is None:
                return None
            mb, m = found
            info = self.src.info(mb, self.src.snapshot(mb).uidvalidity, m)
            return None if info is None else envelope_of(info, m)

        return await self.src.run(run)

    async def counts(self) -> tuple[int, int]:
        mb = await self._checked()
        snap = await self.src.run(self.src.snapshot, mb)
        return len(snap.messages), sum(1 for m in snap.messages if F.SEEN not in m.flags)

    async def tags(self) -> list[str]:
        mb = await self._checked()
        snap = await self.src.run(self.src.snapshot, mb)
        return sorted({k for m in snap.messages for k in keywords(m.flags)}, key=str.casefold)

    async def tag_counts(self) -> dict[str, int]:
        mb = await self._checked()
        snap = await self.src.run(self.src.snapshot, mb)
        out: dict[str, int] = {}
        for m in snap.messages:
            for k in keywords(m.flags):
                out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: kv[0].casefold()))

    def db_path(self) -> Path | None:
        return self.src.store.index.db_path

    # ------------------------------------------------------------------ changing

    async def _targets(self, ids: list[str] | None, search: str | None = None,
                       tz: str | None = None) -> dict[Mailbox, list[int]]:
        """The messages a change applies to, by mailbox: the IDs given, else the selected mailbox (all, or the
        search's matches)."""
        if ids is None:
            mb = await self._checked()
            q = apply_tz(search, tz) if search else None

            def run() -> list[int]:
                snap = self.src.snapshot(mb)
                msgs = snap.messages if q is None else self.src.matching(mb, snap, q)
                return [m.uid for m in msgs]

            return {mb: await self.src.run(run)}
        out: dict[Mailbox, list[int]] = {}
        for i in ids:
            got = decode_id(i)
            if got is None:
                continue
            try:
                mb = self.src.parse(got[0])
            except MailboxError:
                continue
            if not await self.src.run(self.src.check, mb):
                continue
            snap = await self.src.run(self.src.snapshot, mb)
            if snap.uidvalidity == got[1]:
                out.setdefault(mb, []).append(got[2])
        return out

    async def set_read(self, ids: list[str] | None, read: bool, search: str | None = None,
                       tz: str | None = None) -> None:
        for mb, uids in (await self._targets(ids, search, tz)).items():
            def run(mb: Mailbox = mb, uids: list[int] = uids) -> int:
                return self.src.set_seen(mb, self.src.snapshot(mb), uids, read)

            if await self.src.run(run):
                self.src.store.notify(mb.path)  # IMAP sessions (IDLE, selected) and our WebSocket watchers

    async def delete(self, ids: list[str] | None) -> None:
        for mb, uids in (await self._targets(ids)).items():
            n = await self.src.run(self.src.expunge, mb, uids)
            if n:
                log.event("http.expunged", mailbox=mb.name, count=n)
                self.src.store.notify(mb.path)

    async def delete_search(self, query: str, tz: str | None = None) -> None:
        for mb, uids in (await self._targets(None, query, tz)).items():
            if uids and await self.src.run(self.src.expunge, mb, uids):
                log.event("http.expunged", mailbox=mb.name, count=len(uids))
                self.src.store.notify(mb.path)

    async def add(self, raw: bytes, mail_from: str, rcpts: list[str], username: str = "") -> str:
        raise HTTPException(400, "sending through the API is not available in server mode: "
                                 "submit mail over SMTP (the submission port) instead")

    async def _retag(self, ids: list[str] | None, change: Callable[[Msg], frozenset[str] | None]) -> None:
        for mb, uids in (await self._targets(ids)).items():
            wanted = set(uids)

            def run(mb: Mailbox = mb, wanted: set[int] = wanted) -> int:
                return self.src.set_keywords(mb, self.src.snapshot(mb),
                                             lambda m: change(m) if m.uid in wanted else None)

            if await self.src.run(run):
                self.src.store.notify(mb.path)

    async def set_tags(self, ids: list[str], tags: list[str]) -> None:
        """Tags are IMAP keywords (RFC 3501 §2.3.2): the message's keywords become exactly ``tags``."""
        bad = [t for t in tags if not _KEYWORD.match(t)]
        if bad:
            raise SearchError(f"tag {bad[0]!r} is not a valid IMAP keyword (no spaces or ( ) {{ % * \" \\ ])")
        want = frozenset(tags)
        await self._retag(ids, lambda m: frozenset(f for f in m.flags if f.startswith("\\")) | want)

    async def rename_tag(self, old: str, new: str) -> None:
        if not _KEYWORD.match(new):
            raise SearchError(f"tag {new!r} is not a valid IMAP keyword")
        await self._retag(None, lambda m: (m.flags - {old}) | {new} if old in m.flags else None)

    async def delete_tag(self, tag: str) -> None:
        await self._retag(None, lambda m: m.flags - {tag} if tag in m.flags else None)

    # ------------------------------------------------------------------ live events

    async def watch(self, emit: Callable[[dict[str, Any]], None], poll: float = 5.0) -> None:
        """Sends Mailpit's events for the selected mailbox until cancelled: ``new`` (a MessageSummary), ``update``
        (\\Seen changed), ``delete``, ``prune`` (the folder was re-created: reload), then ``stats``.

        Woken by ``MailStore.notify`` (local delivery, IMAP, this API); changes by other processes (mutt, Dovecot)
        are found by a rescan every ``poll`` seconds."""
        mb = await self._checked()
        src = self.src
        wake = asyncio.Event()
        unsubscribe = src.store.subscribe(mb.path, wake.set)
        try:
            prev = await src.run(src.snapshot, mb)
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), poll)
                except TimeoutError:
                    pass
                wake.clear()
                snap = await src.run(src.snapshot, mb)
                if snap is prev:
                    continue
                events = await src.run(_diff, src, mb, prev, snap)
                prev = snap
                for e in events:
                    emit(e)
        finally:
            unsubscribe()


def _diff(src: MailboxSource, mb: Mailbox, old: Snapshot, new: Snapshot) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if old.uidvalidity != new.uidvalidity:
        events.append({"Type": "prune", "Data": None})
    else:
        before = {m.uid: m for m in old.messages}
        after = {m.uid for m in new.messages}
        for uid in sorted(set(before) - after):
            events.append({"Type": "delete", "Data": {"ID": encode_id(mb, old.uidvalidity, uid)}})
        for m in new.messages:
            was = before.get(m.uid)
            if was is None:
                s = src.summary(mb, new, m)
                if s is not None:
                    events.append({"Type": "new", "Data": s})
            elif (F.SEEN in was.flags) != (F.SEEN in m.flags):
                events.append({"Type": "update", "Data": {"ID": encode_id(mb, new.uidvalidity, m.uid),
                                                           "Read": F.SEEN in m.flags}})
    if events:
        unread = sum(1 for m in new.messages if F.SEEN not in m.flags)
        events.append({"Type": "stats", "Data": {"Total": len(new.messages), "Unread": unread,
                                                 "Version": __version__}})
    return events
