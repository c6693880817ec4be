"""``courrier import``: existing mail into an account — an mbox file, a Maildir, or a whole IMAP account.

Moving in must be boring: flags and dates survive, running it twice imports nothing twice, and a failure leaves no
half message behind.

- **Sources.** mbox (the ``From `` line's date is the internal date, taken as UTC; flags from ``Status:`` R →
  \\Seen and ``X-Status:`` A → \\Answered, F → \\Flagged, T → \\Draft, D → \\Deleted, those two fields then
  dropped as they are this file's state, not the message's); Maildir (flags from the ``:2,`` suffix, the date from
  the file's mtime, as Dovecot does); IMAP (``imap://`` clear text with STARTTLS when offered, ``imaps://`` implicit
  TLS; the source's certificate is not checked — it is your old server, often self-signed — every selectable folder,
  its FLAGS and INTERNALDATE, read-only: EXAMINE and BODY.PEEK never change the source). mbox and Maildir go to
  INBOX; IMAP folders to folders of the same name (the source's hierarchy delimiter becomes ours).
- **Idempotent.** A message is "already there" when its folder holds one with the same Message-ID, or — without a
  Message-ID — the same content (SHA-256 of the stored bytes).
- **Atomic per message.** Each message is written as delivery writes it (mailbox/maildir.py: tmp/, fsync, rename,
  then its index row): an interrupted import leaves whole messages and nothing else.
- **Bounded.** A message over ``[limits] max_message_size`` is refused like SMTP would, and reported; the IMAP
  source is read one message at a time.
"""

from __future__ import annotations

import calendar
import hashlib
import imaplib
import mailbox
import os
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from courrier.mailbox import flags as F
from courrier.mailbox import names as folders
from courrier.mailbox.api import Folder, MailStore, Root

STATE_FIELDS = re.compile(rb"^(status|x-status):[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)
_MID = re.compile(rb"^message-id:[ \t]*((?:[^\n]*\n[ \t])*[^\n]*)", re.I | re.M)
_FROM_DATE = re.compile(r"(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\s*$")
IMAP_TIMEOUT = 60


class SourceError(Exception):
    """A source that cannot be read at all (not an mbox, not a Maildir, login refused…): one line."""


@dataclass(frozen=True)
class Item:
    data: bytes  # as stored: LF line endings
    flags: frozenset[str]
    when: float | None
    folder: str = "INBOX"
    label: str = ""  # where it came from, for messages about it
    problem: str = ""  # why it cannot be imported (found while reading the source)


# --------------------------------------------------------------------------- sources


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def mbox_items(path: Path) -> Iterator[Item]:
    with open(path, "rb") as f:
        head = f.read(5)
    if head and head != b"From ":
        raise SourceError(f"{path} is not an mbox (it does not start with a \"From \" line)")
    box = mailbox.mbox(str(path), create=False)
    try:
        for n, key in enumerate(box.iterkeys(), 1):
            msg = box.get_message(key)
            data = _lf(box.get_bytes(key))
            status = (msg.get("Status", "") or "") + (msg.get("X-Status", "") or "")
            letters = {"R": F.SEEN, "A": F.ANSWERED, "F": F.FLAGGED, "T": F.DRAFT, "D": F.DELETED}
            flags = frozenset(f for c, f in letters.items() if c in status)
            header_end = data.find(b"\n\n")
            head_part, rest = (data[:header_end + 1], data[header_end + 1:]) if header_end >= 0 else (data, b"")
            data = STATE_FIELDS.sub(b"", head_part) + rest
            when = None
            m = _FROM_DATE.search(msg.get_from() or "")
            if m:
                try:
                    when = float(calendar.timegm(time.strptime(m.group(1).replace("  ", " 0"),
                                                               "%a %b %d %H:%M:%S %Y")))
                except ValueError:
                    when = None
            yield Item(data, flags, when, label=f"{path} message {n}")
    finally:
        box.close()


def maildir_items(path: Path) -> Iterator[Item]:
    if not ((path / "cur").is_dir() and (path / "new").is_dir()):
        raise SourceError(f"{path} is not a Maildir (it has no cur/ and new/)")
    for sub in ("cur", "new"):
        for entry in sorted(os.scandir(path / sub), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            base, info = F.split_name(entry.name)
            with open(entry.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
            yield Item(_lf(data), frozenset(F.from_info(info)), st.st_mtime, label=entry.path)


def _list_line(line: bytes) -> tuple[set[str], str | None, str] | None:
    """``(\\HasNoChildren) "." "INBOX"`` → (attributes, delimiter, name)."""
    m = re.match(rb'\(([^)]*)\) (?:"((?:[^"\\]|\\.)*)"|NIL) (.*)$', line)
    if not m:
        return None
    attrs = {a.decode().lower() for a in m.group(1).split()}
    delim = m.group(2).decode().replace("\\\\", "\\") if m.group(2) is not None else None
    name = m.group(3).strip()
    if name.startswith(b'"') and name.endswith(b'"'):
        name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
    return attrs, delim, name.decode("utf-8", "replace")


def _our_name(name: str, delim: str | None) -> str:
    if folders.is_inbox(name):
        return "INBOX"
    if delim and delim != folders.DELIMITER:
        name = name.replace(folders.DELIMITER, "_").replace(delim, folders.DELIMITER)
    return name.removeprefix("INBOX" + folders.DELIMITER) if name.upper().startswith("INBOX.") else name


def imap_items(url: str, password: str, max_size: int) -> Iterator[Item]:
    u = urlsplit(url)
    if u.scheme not in ("imap", "imaps") or not u.hostname or not u.username:
        raise SourceError(f"bad IMAP source {url!r} (expected imap[s]://USER@HOST[:PORT], an @ in USER as %40)")
    user = unquote(u.username)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # your old server: often self-signed
    try:
        port = u.port or (993 if u.scheme == "imaps" else 143)
        if u.scheme == "imaps":
            c: imaplib.IMAP4 = imaplib.IMAP4_SSL(u.hostname, port, ssl_context=ctx, timeout=IMAP_TIMEOUT)
        else:
            c = imaplib.IMAP4(u.hostname, port, timeout=IMAP_TIMEOUT)
            if "STARTTLS" in c.capabilities:
                c.starttls(ctx)
        c.login(user, password)
    except (OSError, imaplib.IMAP4.error, ValueError) as e:
        raise SourceError(f"cannot log in to {u.hostname} as {user}: {e}") from None
    try:
        typ, lines = c.list()
        if typ != "OK":
            raise SourceError(f"{u.hostname}: LIST refused: {lines}")
        boxes = [p for line in lines if isinstance(line, bytes) and (p := _list_line(line))]
        for attrs, delim, name in boxes:
            if attrs & {"\\noselect", "\\nonexistent"}:
                continue
            typ, _ = c.select(_quote(name), readonly=True)
            if typ != "OK":
                continue
            typ, data = c.uid("SEARCH", None, "ALL")
            uids = data[0].split() if typ == "OK" and data and data[0] else []
            for uid in uids:
                typ, data = c.uid("FETCH", uid.decode(), "(RFC822.SIZE)")
                size = re.search(rb"RFC822\.SIZE (\d+)", data[0] or b"") if typ == "OK" and data else None
                label = f"{name} UID {uid.decode()}"
                if size and int(size.group(1)) > max_size:
                    yield Item(b"", frozenset(), None, _our_name(name, delim), label,
                               problem=f"larger than [limits] max_message_size ({size.group(1)} octets)")
                    continue
                typ, data = c.uid("FETCH", uid.decode(), "(FLAGS INTERNALDATE BODY.PEEK[])")
                if typ != "OK" or not data or not isinstance(data[0], tuple):
                    continue
                meta = b" ".join(d[0] if isinstance(d, tuple) else d for d in data if d)
                body = data[0][1]
                flags = frozenset(f.decode() for f in imaplib.ParseFlags(meta) if f.lower() != b"\\recent")
                when = None
                tt = imaplib.Internaldate2tuple(meta)
                if tt is not None:
                    when = float(time.mktime(tt))
                yield Item(_lf(body), flags, when, _our_name(name, delim), label)
    finally:
        try:
            c.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def items_from(source: str, password: str | None, max_size: int) -> Iterator[Item]:
    if re.match(r"^imaps?://", source, re.I):
        if password is None:
            raise SourceError("an IMAP source needs the password on stdin")
        return imap_items(source, password, max_size)
    p = Path(source)
    if p.is_dir():
        return maildir_items(p)
    if p.is_file():
        return mbox_items(p)
    raise SourceError(f"cannot read {source}: no such file or directory")


# --------------------------------------------------------------------------- target


def _message_id(data: bytes) -> bytes | None:
    end = data.find(b"\n\n")
    head = data[:end + 1] if end >= 0 else data
    m = _MID.search(head)
    if not m:
        return None
    mid = re.sub(rb"\s+", b"", m.group(1))
    return mid or None


def key_of(data: bytes) -> tuple[str, bytes]:
    """"Already there" means the same Message-ID, or — without one — the same bytes."""
    mid = _message_id(data)
    return ("mid", mid) if mid else ("sha256", hashlib.sha256(data).digest())


class Target:
    """One account's folders, each with the keys of the messages it holds (read once, on first use)."""

    def __init__(self, store: MailStore, root: Root, max_size: int) -> None:
        self.store, self.index = store, store.index
        self.root, self.max_size = root, max_size
        self._keys: dict[Folder, set[tuple[str, bytes]]] = {}

    def _folder(self, name: str) -> Folder:
        path = self.store.folder(self.root, name)
        if not self.store.folder_exists(self.root, name):
            self.store.create_folder(self.root, name)
            self.index.subscribe(self.root, name)
        return path

    def _known(self, path: Folder) -> set[tuple[str, bytes]]:
        keys = self._keys.get(path)
        if keys is None:
            keys = set()
            for m in self.index.sync(path).messages:
                head = self.index.header(path, m)
                mid = _message_id(_lf(head)) if head else None
                if mid:
                    keys.add(("mid", mid))
                else:
                    data = self.index.read(path, m)
                    if data is not None:
                        keys.add(("sha256", hashlib.sha256(data).digest()))
            self._keys[path] = keys
        return keys

    def add(self, item: Item) -> str:
        """"imported", "present", or raises ValueError/OSError/FolderError with the reason."""
        if item.problem:
            raise ValueError(item.problem)
        if len(item.data) > self.max_size:
            raise ValueError(f"larger than [limits] max_message_size ({len(item.data)} octets)")
        if not item.data.strip():
            raise ValueError("empty message")
        path = self._folder(item.folder)
        known = self._known(path)
        key = key_of(item.data)
        if key in known:
            return "present"
        self.index.append(path, item.data, item.flags, item.when or time.time())
        known.add(key)
        return "imported"
