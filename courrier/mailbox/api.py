"""The mail store's interface: the one door every reader and writer of stored mail goes through.

IMAP, POP3, the web inspector, local delivery and submission's Sent copy know a store only as ``MailStore`` (accounts,
folders by IMAP name, delivery, change notification) and its ``FolderIndex`` (UIDs, flags, message bytes). The
Maildir + SQLite implementation is ``mailbox/store.py:MaildirStore``; the PostgreSQL store of the cluster issue will
be the second. So nothing here speaks of directories or files:

- a **root** is the store's handle for one account's set of folders (or capture mode's single mailbox), and a
  **folder** the handle for one mailbox; both are opaque and hashable: compared, used as keys, handed back to the
  store — never looked inside (MaildirStore's are the Maildir paths).
- folders are named as IMAP names them (``mailbox/names.py``: delimiter ``.``, INBOX, modified UTF-7).
- messages come back as ``Msg`` rows inside a ``Snapshot``; their bytes with LF line endings (``to_crlf`` for the
  wire). ``Msg.base`` is a name unique to the message for its whole life (POP3 UIDL derives from it); ``Msg.file``
  belongs to the store (where it keeps the bytes), callers only hand the ``Msg`` back.

Every method of both protocols may block on the disk or the database except ``run``, ``deliver``, ``notify`` and
``subscribe``: callers run them through ``MailStore.run`` (the store's own pool), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from courrier.mailbox.names import FolderError  # noqa: F401  (raised by the folder methods below)

T = TypeVar("T")

Root = Hashable  # one account's folders (or the capture mailbox): an opaque handle the store gives out
Folder = Hashable  # one mailbox: an opaque handle the store gives out


@dataclass(frozen=True, slots=True)
class Msg:
    uid: int
    base: str  # unique to the message for its life (POP3 UIDL)
    file: str  # the store's own locator (MaildirStore: "new/<name>" or "cur/<name>"); callers never read it
    flags: frozenset[str]
    size: int  # RFC822.SIZE: with CRLF line endings
    internaldate: float
    modseq: int


@dataclass(frozen=True, slots=True)
class Usage:
    """What an account's folders hold, as quotas count it (RFC 9208 §5.1 STORAGE, §5.2 MESSAGE).

    ``octets`` sums each message's RFC822.SIZE (CRLF line endings, what FETCH, POP3 and SMTP SIZE measure), as
    Dovecot counts with ``quota_vsizes = yes``: a message's SIZE= compares with it directly."""

    messages: int = 0
    octets: int = 0


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of a folder, ordered by UID."""

    uidvalidity: int
    uidnext: int
    highestmodseq: int
    messages: tuple[Msg, ...]


class Stream:
    """A stored message read in pieces (``FolderIndex.open``). ``read_blocks()`` gives the stored octets (LF or mixed
    line endings) a block at a time, from the start at each call; ``chunks()`` gives them with CRLF line endings;
    ``size`` is their exact CRLF count (what a literal announces), counted by a pass of its own on first use;
    ``close()`` frees what the store holds for it (an open file). A message expunged meanwhile may end early: once
    ``size`` is known, ``chunks()`` raises :class:`StreamBroken` rather than give other than ``size`` octets."""

    def __init__(self, read_blocks: Callable[[], Iterator[bytes]], close: Callable[[], None] = lambda: None) -> None:
        self.read_blocks = read_blocks
        self.close = close
        self._size: int | None = None

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = sum(len(c) for c in lf_to_crlf(self.read_blocks()))
        return self._size

    def chunks(self) -> Iterator[bytes]:
        size, n = self._size, 0
        for c in lf_to_crlf(self.read_blocks()):
            n += len(c)
            if size is not None and n > size:
                raise StreamBroken("message changed while being read")
            yield c
        if size is not None and n != size:
            raise StreamBroken("message gone while being read")

    def slice(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The octets ``start`` to ``start + length`` (to the end when ``length`` is None), in pieces."""
        end = self.size if length is None else min(self.size, start + length)
        pos = 0
        for chunk in self.chunks():
            if pos >= end:
                break
            lo, hi = max(start - pos, 0), min(end - pos, len(chunk))
            pos += len(chunk)
            if lo < hi:
                yield chunk[lo:hi]

    def length(self, start: int = 0, length: int | None = None) -> int:
        """How many octets ``slice(start, length)`` yields."""
        end = self.size if length is None else min(self.size, start + length)
        return max(0, end - start)


class StreamBroken(OSError):
    """A message that went away while being read in pieces (expunged by another session or node)."""


def _line_ends_mapped(chunks: Iterable[bytes], convert: Callable[[bytes], bytes]) -> Iterator[bytes]:
    """``convert`` over pieces, a CR that ends one piece held back for the next, so that a CRLF split between two
    pieces is converted as one line ending (a CR left at the very end is passed as it is)."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        if data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"
        else:
            carry = b""
        if data:
            yield convert(data)
    if carry:
        yield carry


def crlf_to_lf(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Streams CRLF → LF (what both stores do to a body as it is stored)."""
    return _line_ends_mapped(chunks, lambda data: data.replace(b"\r\n", b"\n"))


def lf_to_crlf(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """``to_crlf`` over pieces."""
    return _line_ends_mapped(blocks, to_crlf)


STREAM_BATCH = 2 << 20  # octets of a large message read per trip to the store's threads (FETCH, RETR)


def take(chunks: Iterator[bytes], limit: int = STREAM_BATCH) -> list[bytes]:
    """The next pieces of ``chunks``, about ``limit`` octets (one trip to the store's threads while a large message
    is sent: IMAP FETCH, POP3 RETR); an empty list once it is exhausted."""
    got: list[bytes] = []
    n = 0
    for chunk in chunks:
        got.append(chunk)
        n += len(chunk)
        if n >= limit:
            break
    return got


class BodySource(Protocol):
    """A callable returning an iterator of the body's bytes chunks (CRLF), callable more than once."""

    def __call__(self) -> Iterable[bytes]: ...


@runtime_checkable
class FolderIndex(Protocol):
    """UIDs, UIDVALIDITY, modification sequences, flags and bytes of the messages of a folder (RFC 3501 §2.3.1)."""

    def key(self, folder: Folder) -> str:
        """A stable text naming the folder (cache keys, logs)."""
        ...

    def sync(self, folder: Folder, *, force: bool = False) -> Snapshot:
        """The folder as it is now; messages stored behind the store's back get the next UIDs."""
        ...

    def read(self, folder: Folder, m: Msg) -> bytes | None:
        """The message's bytes (LF); None when it has been expunged meanwhile."""
        ...

    def open(self, folder: Folder, m: Msg) -> Stream | None:
        """The message as a :class:`Stream` (CRLF, in pieces): FETCH BODY[]/BINARY[]/RFC822 and POP3 RETR send a
        large message without holding it whole. None when it has been expunged meanwhile."""
        ...

    def read_head(self, folder: Folder, m: Msg, limit: int) -> bytes | None:
        """The first ``limit`` octets of the message (LF) without reading the rest; None when expunged."""
        ...

    def header(self, folder: Folder, m: Msg) -> bytes | None:
        """The header section with CRLF (cached); None when expunged."""
        ...

    def claim_recent(self, folder: Folder) -> set[int]: ...

    def recent_uids(self, folder: Folder) -> set[int]: ...

    def recent_count(self, folder: Folder) -> int: ...

    def store_flags(self, folder: Folder, changes: Iterable[tuple[int, frozenset[str]]], mode: str = "set",
                    current: dict[int, Msg] | None = None, *, unchangedsince: int | None = None,
                    modified: set[int] | None = None) -> dict[int, Msg]:
        """``unchangedsince``: RFC 7162 §3.1.3 — messages changed after it are left alone, their UIDs in ``modified``."""
        ...

    def vanished(self, folder: Folder, since: int) -> list[int] | None:
        """RFC 7162 §3.2.5.2: UIDs expunged after mod-sequence ``since``; None when the records do not reach back."""
        ...

    def append(self, folder: Folder, data: bytes, flags: frozenset[str] = frozenset(),
               internaldate: float | None = None) -> tuple[int, int]: ...

    def expunge(self, folder: Folder, uids: Iterable[int], *, only_deleted: bool = False) -> list[int]: ...

    def copy(self, src: Folder, uids: Iterable[int], dst: Folder, *,
             move: bool = False) -> tuple[int, list[tuple[int, int]]]: ...

    def subscriptions(self, root: Root) -> set[str]: ...

    def subscribe(self, root: Root, name: str, on: bool = True) -> None: ...


@runtime_checkable
class MailStore(Protocol):
    """Accounts' folders, delivery into them, and change notification."""

    @property
    def index(self) -> FolderIndex:
        """Opened on first use (so a database that cannot be opened costs the command that needs it)."""
        ...

    @property
    def db_path(self) -> Path | None:
        """The database file whose size the web API reports; None for a store without one."""
        ...

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Runs blocking store work on the store's own pool."""
        ...

    def notify(self, folder: Folder) -> None:
        """Tells the sessions watching ``folder`` (IDLE, selected mailboxes, web events) it changed. On the loop."""
        ...

    def subscribe(self, folder: Folder, callback: Callable[[], None]) -> Callable[[], None]:
        """Calls ``callback`` on the loop whenever ``folder`` is notified; returns the unsubscribe function."""
        ...

    # -- roots: one per account, and capture mode's single mailbox
    def account_root(self, account: str) -> Root:
        """``local@domain``'s folders; ValueError for an address that cannot name an account."""
        ...

    @property
    def capture_root(self) -> Root: ...

    def ensure_root(self, root: Root) -> None:
        """The root (its INBOX) exists."""
        ...

    def prepare_root(self, root: Root) -> None:
        """INBOX and the special-use folders exist (RFC 6154 §2), as with Dovecot's auto=create: at each login."""
        ...

    def provision(self, root: Root) -> bool:
        """An account's default folders created and subscribed once; whether it ran now."""
        ...

    # -- folders of a root, by IMAP name (FolderError: a name that cannot be used, with the reason)
    def folder(self, root: Root, name: str) -> Folder: ...

    def folder_exists(self, root: Root, name: str) -> bool: ...

    def list_folders(self, root: Root) -> list[str]:
        """Every folder's name, INBOX first."""
        ...

    def create_folder(self, root: Root, name: str) -> Folder: ...

    def delete_folder(self, root: Root, name: str) -> None:
        """RFC 3501 §6.3.4; a folder made again later gets a new UIDVALIDITY."""
        ...

    def rename_folder(self, root: Root, old: str, new: str) -> None:
        """RFC 3501 §6.3.5 (children move along); renaming INBOX moves its messages and leaves it empty."""
        ...

    # -- delivery
    def folder_for(self, account: str, folder: str | None) -> Folder:
        """Where delivery puts mail for ``account``: INBOX, or a folder such as ``Junk`` or ``Sent``."""
        ...

    async def deliver(self, copies: list[tuple[Folder, bytes]], body_chunks: BodySource,
                      size: int | None = None) -> list[Any]:
        """Durable delivery of one message into each folder, each copy with its own prepended header lines (LF);
        returns once every copy is on stable storage. ``size``: the body's size when its chunks are in memory."""
        ...

    # -- quota (RFC 9208): what an account's folders hold
    def usage(self, root: Root, *, exact: bool = False) -> Usage:
        """The root's messages and octets, from counts the store keeps on every write and expunge (and delivery):
        cheap enough for each RCPT. ``exact``: each folder is looked at first, so mail changed behind the store's
        back counts too (a listing per folder: for commands that show the number, never per message)."""
        ...

    def close(self) -> None: ...


def crlf_size(data: bytes) -> int:
    """Octets of ``data`` once bare LFs become CRLF (what FETCH and RETR send)."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def to_crlf(data: bytes) -> bytes:
    """LF (or mixed) line endings → CRLF; every other byte is kept."""
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n")


def header_end_lf(data: bytes) -> int:
    """Offset just past the blank line ending the header (LF or CRLF storage); len(data) without one."""
    if data.startswith(b"\n") or data.startswith(b"\r\n"):
        return 1 if data[:1] == b"\n" else 2
    i = data.find(b"\n\n")
    j = data.find(b"\r\n\r\n")
    if j >= 0 and (i < 0 or j < i):
        return j + 4
    return len(data) if i < 0 else i + 2
