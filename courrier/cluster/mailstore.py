"""PgMailStore: ``mailbox/api.py:MailStore`` (and its ``FolderIndex``) over PostgreSQL, shared by every node.

Roots are account addresses, folders ``(account, IMAP name)`` pairs — opaque handles for the callers, as the
interface asks. Tables (``migrations/0001_cluster.sql``): ``mail_folders`` (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and
the quota counts of each folder), ``mail_messages`` (flags, sizes, dates, the message itself), ``mail_subscriptions``.

UIDs: every write takes its folder row's lock (``UPDATE mail_folders … RETURNING``) to draw UIDs and the new
modification sequence, and keeps it until commit, so two nodes delivering into one folder get UIDs in commit order —
never a UID visible before a smaller one (RFC 3501 §2.3.1.1). Every write also sends ``NOTIFY courrier`` with the
folder, delivered at commit to every node (``cluster/node.py``), which wakes the IDLE sessions there.

A snapshot is cached per folder and re-read only when the folder row's (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) changed:
a ``sync`` of an unchanged folder is one indexed row read.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from courrier.cluster.pg import Pool, Unavailable
from courrier.mailbox import flags as F
from courrier.mailbox.api import (
    BodySource,
    Msg,
    Snapshot,
    Stream,
    Usage,
    crlf_size,
    crlf_to_lf,
    header_end_lf,
    to_crlf,
)
from courrier.mailbox.names import (
    DEFAULT_FOLDERS,
    DELIMITER,
    MAX_NAME,
    SPECIAL_USE,
    FolderError,
    decode_mutf7,
    is_inbox,
    normalize,
)

T = TypeVar("T")
Folder = tuple[str, str]  # (account, IMAP name)
CHANNEL = "courrier"  # LISTEN/NOTIFY channel; payload "node\x1faccount\x1fname"
_BAD = re.compile(r"[/\\\x00-\x1f\x7f*%]")
_COLS = "uid, base, flags, size, internaldate, modseq"
HEADER_CACHE = 20000  # header sections kept per node (FETCH of headers, the web list)
HEADER_BATCH = 500  # headers read per query on a cache miss


def canonical_name(name: str) -> str:
    """The stored name of an IMAP mailbox name: INBOX in capitals, ``INBOX.x`` as ``x``; FolderError when invalid
    (the rules of the local store's ``folders.path_for``)."""
    name = normalize(name)
    if is_inbox(name):
        return "INBOX"
    if name.startswith("INBOX."):
        name = name[6:]
    parts = name.split(DELIMITER)
    if (not name or len(name) > MAX_NAME or _BAD.search(name) or any(p in ("", "..") for p in parts)
            or name.startswith("~")):
        raise FolderError(f"invalid mailbox name {name[:60]!r}")
    decode_mutf7(name)
    return name


def new_base() -> str:
    """A unique name for a message's life (POP3 UIDL): time first, so names sort roughly by arrival."""
    return f"{int(time.time())}.{uuid.uuid4().hex}"


_INSERT = (
    "WITH f AS (UPDATE mail_folders SET uidnext=uidnext+1, highestmodseq=highestmodseq+1, messages=messages+1, "
    "octets=octets+%s WHERE account=%s AND name=%s RETURNING id, uidvalidity, uidnext-1 AS uid, highestmodseq), "
    "m AS (INSERT INTO mail_messages(folder, uid, base, flags, size, internaldate, modseq, hdr_len, prefix, body_id) "
    "SELECT f.id, f.uid, %s, %s, %s, %s, f.highestmodseq, %s, %s, %s FROM f) "
    "SELECT f.uidvalidity, f.uid, pg_notify(%s, %s) FROM f")
# one message whose body is one chunk, into one folder, in one statement: an autocommit transaction of its own
_INSERT_ONE = (
    "WITH f AS (UPDATE mail_folders SET uidnext=uidnext+1, highestmodseq=highestmodseq+1, messages=messages+1, "
    "octets=octets+%s WHERE account=%s AND name=%s RETURNING id, uidvalidity, uidnext-1 AS uid, highestmodseq), "
    "b AS (INSERT INTO mail_bodies(id, seq, data) SELECT nextval('mail_body_id'), 0, %s FROM f RETURNING id), "
    "m AS (INSERT INTO mail_messages(folder, uid, base, flags, size, internaldate, modseq, hdr_len, prefix, body_id) "
    "SELECT f.id, f.uid, %s, %s, %s, %s, f.highestmodseq, %s, %s, b.id FROM f, b) "
    "SELECT f.uidvalidity, f.uid, pg_notify(%s, %s) FROM f")
# the stored message: this copy's prefix, then its body's chunks in order
_WHOLE = ("m.prefix || COALESCE((SELECT string_agg(b.data, ''::bytea ORDER BY b.seq) FROM mail_bodies b "
          "WHERE b.id = m.body_id), ''::bytea)")
_HEAD = ("substring(m.prefix || COALESCE((SELECT string_agg(b.data, ''::bytea ORDER BY b.seq) FROM mail_bodies b "
         "WHERE b.id = m.body_id AND b.seq <= %s), ''::bytea) from 1 for %s)")
_HEADER = ("substring(m.prefix || COALESCE((SELECT b.data FROM mail_bodies b WHERE b.id = m.body_id AND b.seq = 0), "
           "''::bytea) from 1 for m.hdr_len)")
# group commit: the deliveries of one-chunk bodies into one folder waiting while another statement of the node runs
# go in together — one statement, one transaction, one WAL flush for all of them (PgIndex.deliver_one)
_INSERT_MANY = (
    "WITH f AS (UPDATE mail_folders SET uidnext=uidnext+%(k)s, highestmodseq=highestmodseq+1, "
    "messages=messages+%(k)s, octets=octets+%(octets)s WHERE account=%(account)s AND name=%(name)s "
    "RETURNING id, uidvalidity, uidnext-%(k)s AS first, highestmodseq), "
    "i AS MATERIALIZED (SELECT t.*, nextval('mail_body_id') AS bid FROM f, unnest(%(body)s::bytea[], "
    "%(base)s::text[], %(size)s::bigint[], %(idate)s::float8[], %(hdr)s::int[], %(prefix)s::bytea[]) "
    "WITH ORDINALITY AS t(body, base, size, idate, hdr, prefix, n)), "
    "b AS (INSERT INTO mail_bodies(id, seq, data) SELECT bid, 0, body FROM i), "
    "m AS (INSERT INTO mail_messages(folder, uid, base, flags, size, internaldate, modseq, hdr_len, prefix, body_id) "
    "SELECT f.id, f.first + i.n - 1, i.base, '{}', i.size, i.idate, f.highestmodseq, i.hdr, i.prefix, i.bid "
    "FROM f, i) "
    "SELECT f.uidvalidity, f.first, pg_notify(%(channel)s, %(payload)s) FROM f")
GROUP_MAX = 64  # deliveries per group statement
GROUP_BYTES = 8 << 20  # ... and octets of their bodies
CHUNK = 1 << 20  # octets per mail_bodies row
READ_CHUNKS = 2  # mail_bodies rows fetched per statement when a message is read in pieces (PgIndex.open), in
#                 binary (text would double them in transit)


@dataclass(frozen=True)
class StoredBody:
    id: int
    head: bytes  # the first chunk (where the header section ends, nearly always)
    size: int  # RFC822.SIZE of the body: CRLF line endings


def store_body(c: psycopg.Connection, chunks: Iterable[bytes]) -> StoredBody:
    """Writes a body (LF line endings) chunk by chunk in the caller's transaction: never more than a chunk or two in
    memory, whatever its size."""
    body_id = 0
    seq, size, head, buf, last = 0, 0, b"", b"", b""

    def put(piece: bytes) -> None:
        nonlocal seq, size, head, last, body_id
        size += len(piece) + piece.count(b"\n") - piece.count(b"\r\n")
        if last == b"\r" and piece[:1] == b"\n":  # a CR LF pair cut by the chunking counts once
            size -= 1
        last = piece[-1:]
        if seq == 0:  # the first row draws the body's id: one statement, as a body is nearly always one chunk
            head = piece
            body_id = c.execute("INSERT INTO mail_bodies(id, seq, data) VALUES (nextval('mail_body_id'), 0, %s) "
                                "RETURNING id", (piece,)).fetchone()[0]  # type: ignore[index]
        else:
            c.execute("INSERT INTO mail_bodies(id, seq, data) VALUES (%s, %s, %s)", (body_id, seq, piece))
        seq += 1

    for chunk in chunks:
        buf += chunk
        while len(buf) >= CHUNK:
            put(buf[:CHUNK])
            buf = buf[CHUNK:]
    if buf or seq == 0:
        put(buf)
    return StoredBody(body_id, head, size)


def _record_vanished(c: psycopg.Connection, folder_id: int, uids: list[int], modseq: int) -> None:
    """RFC 7162 §3.2.5.2: what VANISHED (EARLIER) will answer."""
    with c.cursor() as cur:
        cur.executemany("INSERT INTO mail_vanished(folder, uid, modseq) VALUES (%s, %s, %s) "
                        "ON CONFLICT (folder, uid) DO UPDATE SET modseq=excluded.modseq",
                        [(folder_id, u, modseq) for u in uids])


def drop_bodies(c: psycopg.Connection, ids: list[int]) -> None:
    """Deletes the bodies no message refers to any more (after an expunge or a folder's deletion), in the caller's
    transaction, once its messages are deleted.

    Two transactions deleting the last two messages of one body (two folders, two nodes) would each still see the
    other's message under READ COMMITTED and both keep the body. So each first locks the body's first chunk row
    (ids in one order: no deadlock) and looks in a second statement, whose snapshot is taken once the lock is held:
    the second one waits for the first to commit, then sees its message gone and deletes the body."""
    ids = sorted(set(ids))
    if ids:
        c.execute("SELECT id FROM mail_bodies WHERE id = ANY(%s) AND seq = 0 ORDER BY id FOR UPDATE", (ids,))
        c.execute("DELETE FROM mail_bodies b WHERE b.id = ANY(%s) AND NOT EXISTS "
                  "(SELECT 1 FROM mail_messages m WHERE m.body_id = b.id)", (ids,))


def _msg(r: tuple[Any, ...]) -> Msg:
    return Msg(r[0], r[1], str(r[0]), frozenset(r[2]), r[3], r[4], r[5])


class _Cached:
    __slots__ = ("state", "snapshot", "recent_floor", "lock")

    def __init__(self) -> None:
        self.state: tuple[int, int, int] | None = None
        self.snapshot: Snapshot | None = None
        self.recent_floor: int | None = None
        self.lock = threading.Lock()


@dataclass(eq=False)
class _Pending:
    """One delivery waiting for its group statement (PgIndex.deliver_one)."""

    folder: Folder
    prefix: bytes
    body: bytes
    done: bool = False
    result: tuple[int, int] | None = None
    error: BaseException | None = None


class _Group:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queue: list[_Pending] = []
        self.busy = False


def _take_batch(queue: list[_Pending]) -> list[_Pending]:
    """The first waiting deliveries, up to GROUP_MAX and GROUP_BYTES (at least one), out of ``queue``."""
    n, size = 0, 0
    while n < len(queue) and n < GROUP_MAX and (n == 0 or size + len(queue[n].body) <= GROUP_BYTES):
        size += len(queue[n].body)
        n += 1
    batch = queue[:n]
    del queue[:n]
    return batch


class PgIndex:
    """``api.FolderIndex`` over the cluster tables."""

    def __init__(self, pool: Pool, node: str) -> None:
        self.pool = pool
        self.node = node
        self._group = _Group()
        self._cache: dict[Folder, _Cached] = {}
        self._headers: dict[tuple[Folder, str], bytes] = {}
        self._lock = threading.Lock()

    def _c(self, folder: Folder) -> _Cached:
        with self._lock:
            c = self._cache.get(folder)
            if c is None:
                c = self._cache[folder] = _Cached()
            return c

    def key(self, folder: Folder) -> str:
        return f"{folder[0]}/{folder[1]}"

    def _notify(self, c: psycopg.Connection, folder: Folder) -> None:
        c.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.node}\x1f{folder[0]}\x1f{folder[1]}"))

    @staticmethod
    def _ensure(c: psycopg.Connection, folder: Folder) -> None:
        c.execute("INSERT INTO mail_folders(account, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", folder)

    # ------------------------------------------------------------------ reading

    def sync(self, folder: Folder, *, force: bool = False) -> Snapshot:
        cached = self._c(folder)
        with cached.lock:
            with self.pool.conn() as c:
                row = c.execute("SELECT id, uidvalidity, uidnext, highestmodseq FROM mail_folders "
                                "WHERE account=%s AND name=%s", folder).fetchone()
                if row is None and folder[1] == "INBOX":
                    self._ensure(c, folder)
                    row = c.execute("SELECT id, uidvalidity, uidnext, highestmodseq FROM mail_folders "
                                    "WHERE account=%s AND name=%s", folder).fetchone()
                if row is None:  # a folder deleted meanwhile (elsewhere): nothing in it
                    return Snapshot(1, 1, 1, ())
                state = (row[1], row[2], row[3])
                if force or cached.snapshot is None or cached.state != state:
                    with c.transaction():  # one snapshot for the folder row and its messages (UIDNEXT > every UID)
                        c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        row = c.execute("SELECT id, uidvalidity, uidnext, highestmodseq FROM mail_folders "
                                        "WHERE id=%s", (row[0],)).fetchone()
                        if row is None:  # deleted between the two looks
                            return Snapshot(1, 1, 1, ())
                        msgs = tuple(_msg(r) for r in c.execute(
                            f"SELECT {_COLS} FROM mail_messages WHERE folder=%s ORDER BY uid", (row[0],)))
                    state = (row[1], row[2], row[3])
                    if cached.recent_floor is None or (cached.state is not None and cached.state[0] != state[0]):
                        cached.recent_floor = state[1]  # what is here when this node first looks is not \Recent
                    cached.state, cached.snapshot = state, Snapshot(state[0], state[1], state[2], msgs)
            assert cached.snapshot is not None
            return cached.snapshot

    def _body(self, folder: Folder, m: Msg, expr: str, *args: Any) -> bytes | None:
        with self.pool.conn() as c:
            r = c.execute(f"SELECT {expr} FROM mail_messages m JOIN mail_folders f ON f.id=m.folder "
                          "WHERE f.account=%s AND f.name=%s AND m.uid=%s AND m.base=%s",
                          (*args, *folder, m.uid, m.base)).fetchone()
        return None if r is None else bytes(r[0])

    def read(self, folder: Folder, m: Msg) -> bytes | None:
        return self._body(folder, m, _WHOLE)

    def open(self, folder: Folder, m: Msg) -> Stream | None:
        """``api.FolderIndex.open``: the message row is read once, then its body's 1 MiB rows READ_CHUNKS at a time,
        each batch in a statement of its own (no connection is held while the client reads). Bodies never change,
        so the counting pass and the sending pass see the same octets unless the message is expunged meanwhile."""
        with self.pool.conn() as c:
            r = c.execute("SELECT m.prefix, m.body_id FROM mail_messages m JOIN mail_folders f ON f.id=m.folder "
                          "WHERE f.account=%s AND f.name=%s AND m.uid=%s AND m.base=%s",
                          (*folder, m.uid, m.base)).fetchone()
        if r is None:
            return None
        prefix, body_id = bytes(r[0]), r[1]

        def blocks() -> Iterator[bytes]:
            yield prefix
            seq = 0
            while True:
                with self.pool.conn() as c:
                    rows = c.execute("SELECT seq, data FROM mail_bodies WHERE id=%s AND seq >= %s ORDER BY seq "
                                     "LIMIT %s", (body_id, seq, READ_CHUNKS), binary=True).fetchall()
                for n, data in rows:
                    yield bytes(data)
                    seq = n + 1
                if len(rows) < READ_CHUNKS:
                    return

        return Stream(blocks)

    def read_head(self, folder: Folder, m: Msg, limit: int) -> bytes | None:
        return self._body(folder, m, _HEAD, limit // CHUNK, limit)

    def header(self, folder: Folder, m: Msg) -> bytes | None:
        """The header section (CRLF). A miss reads this message's and the next ones' headers in one query
        (HEADER_BATCH): a FETCH of every header costs a round trip per batch, not per message."""
        k = (folder, m.base)
        h = self._headers.get(k)
        if h is not None:
            return h
        with self.pool.conn() as c:
            rows = c.execute(f"SELECT m.uid, m.base, {_HEADER} FROM mail_messages m "
                             "JOIN mail_folders f ON f.id=m.folder WHERE f.account=%s AND f.name=%s AND m.uid >= %s "
                             "ORDER BY m.uid LIMIT %s", (*folder, m.uid, HEADER_BATCH)).fetchall()
        with self._lock:
            if len(self._headers) + len(rows) > HEADER_CACHE:
                self._headers.clear()
            for uid, base, data in rows:
                hh = to_crlf(bytes(data))
                self._headers[(folder, base)] = hh
                if uid == m.uid and base == m.base:
                    h = hh
        return h

    def claim_recent(self, folder: Folder) -> set[int]:
        """RFC 3501 §2.3.2 \\Recent, per node: the UIDs no session of this node has seen yet."""
        snap = self.sync(folder)
        cached = self._c(folder)
        with cached.lock:
            floor = cached.recent_floor or snap.uidnext
            cached.recent_floor = snap.uidnext
        return {m.uid for m in snap.messages if m.uid >= floor}

    def recent_uids(self, folder: Folder) -> set[int]:
        snap = self.sync(folder)
        floor = self._c(folder).recent_floor or snap.uidnext
        return {m.uid for m in snap.messages if m.uid >= floor}

    def recent_count(self, folder: Folder) -> int:
        return len(self.recent_uids(folder))

    # ------------------------------------------------------------------ writes

    def _arrived(self, folder: Folder, uid: int) -> None:
        r"""Messages this node adds to a folder it has not looked at yet are \Recent for its next session
        (RFC 3501 §2.3.2), as they are in the local store."""
        cached = self._c(folder)
        if cached.recent_floor is None:
            cached.recent_floor = uid

    def _take(self, c: psycopg.Connection, folder: Folder, uids: int, messages: int = 0,
              octets: int = 0) -> tuple[int, int, int, int]:
        """Locks the folder row until commit and draws ``uids`` UIDs and one modseq: (id, uidvalidity, first uid,
        modseq)."""
        r = c.execute("UPDATE mail_folders SET uidnext=uidnext+%s, highestmodseq=highestmodseq+1, "
                      "messages=messages+%s, octets=octets+%s WHERE account=%s AND name=%s "
                      "RETURNING id, uidvalidity, uidnext-%s, highestmodseq",
                      (uids, messages, octets, *folder, uids)).fetchone()
        if r is None:
            raise FolderError("no such mailbox")
        return r[0], r[1], r[2], r[3]

    def insert(self, c: psycopg.Connection, folder: Folder, prefix: bytes, body: StoredBody,
               flags: frozenset[str] = frozenset(), internaldate: float | None = None, *,
               create: bool = False) -> tuple[int, int]:
        """One message — ``prefix`` (this copy's header lines, LF) then a stored body — into ``folder`` inside the
        caller's transaction: (UIDVALIDITY, UID).

        One statement draws the UID (locking the folder row until commit), stores the message row and sends the
        notification: the lock is held for that one round trip and the commit, so deliveries into one busy folder
        follow each other as closely as the WAL allows (the body was written before, without the lock). A folder
        that does not exist yet is made first when ``create`` (delivery into Junk or Sent), else FolderError."""
        size = crlf_size(prefix) + body.size
        args = (size, *folder, new_base(), sorted(flags), size,
                internaldate if internaldate is not None else time.time(), header_end_lf(prefix + body.head),
                prefix, body.id, CHANNEL, f"{self.node}\x1f{folder[0]}\x1f{folder[1]}")
        return self._insert_row(c, _INSERT, args, folder, create)

    def _insert_row(self, c: psycopg.Connection, sql: str, args: tuple[Any, ...], folder: Folder,
                    create: bool) -> tuple[int, int]:
        """Runs an insert statement (``_INSERT``/``_INSERT_ONE``) that answers no row when the folder does not
        exist; then makes the folder and tries once more when ``create``, else FolderError."""
        for _ in range(2):
            r = c.execute(sql, args).fetchone()
            if r is not None:
                self._arrived(folder, r[1])
                return r[0], r[1]
            if not create:
                break
            self._ensure(c, folder)
        raise FolderError("no such mailbox")

    def insert_one(self, folder: Folder, prefix: bytes, body: bytes, flags: frozenset[str] = frozenset(),
                   internaldate: float | None = None, *, create: bool = False) -> tuple[int, int]:
        """The common case — one copy, a body of at most one chunk (LF) — as one statement in autocommit: its own
        transaction, one round trip, committed (synchronous_commit) when it returns."""
        bsize = len(body) + body.count(b"\n") - body.count(b"\r\n")
        size = crlf_size(prefix) + bsize
        args = (size, *folder, body, new_base(), sorted(flags), size,
                internaldate if internaldate is not None else time.time(),
                header_end_lf(prefix + body[:CHUNK]), prefix, CHANNEL, f"{self.node}\x1f{folder[0]}\x1f{folder[1]}")
        with self.pool.conn() as c:
            return self._insert_row(c, _INSERT_ONE, args, folder, create)

    def deliver_one(self, folder: Folder, prefix: bytes, body: bytes) -> tuple[int, int]:
        """A delivery of one copy with a body of one chunk (LF), committed with the others of its folder that are
        waiting meanwhile (group commit): the first thread to come leads and sends its own delivery; deliveries
        that arrive while a statement runs queue up, and the next leader sends all those of one folder in one
        statement (``_INSERT_MANY``) — its own transaction, committed (synchronous_commit) before anyone returns.
        Alone, a delivery goes as before (``insert_one``): no wait is added."""
        item = _Pending(folder, prefix, body)
        g = self._group
        with g.cond:
            g.queue.append(item)
            while not item.done:
                if g.busy:
                    g.cond.wait()
                    continue
                g.busy = True
                batch = _take_batch(g.queue)
                g.cond.release()
                try:
                    self._send_batch(batch)
                finally:
                    g.cond.acquire()
                    g.busy = False
                    g.cond.notify_all()
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _send_batch(self, batch: list[_Pending]) -> None:
        by_folder: dict[Folder, list[_Pending]] = {}
        for it in batch:
            by_folder.setdefault(it.folder, []).append(it)
        for folder, items in sorted(by_folder.items()):
            try:
                if len(items) == 1:
                    items[0].result = self.insert_one(folder, items[0].prefix, items[0].body, create=True)
                else:
                    for it, res in zip(items, self._insert_many(folder, items), strict=True):
                        it.result = res
            except BaseException as e:  # noqa: BLE001 - handed to every waiting delivery of the group
                for it in items:
                    it.error = e
            for it in items:
                it.done = True

    def _insert_many(self, folder: Folder, items: list[_Pending]) -> list[tuple[int, int]]:
        now = time.time()
        sizes, hdrs = [], []
        for it in items:
            b = it.body
            sizes.append(crlf_size(it.prefix) + len(b) + b.count(b"\n") - b.count(b"\r\n"))
            hdrs.append(header_end_lf(it.prefix + b[:CHUNK]))
        args = {"k": len(items), "octets": sum(sizes), "account": folder[0], "name": folder[1],
                "body": [it.body for it in items], "base": [new_base() for _ in items], "size": sizes,
                "idate": [now] * len(items), "hdr": hdrs, "prefix": [it.prefix for it in items],
                "channel": CHANNEL, "payload": f"{self.node}\x1f{folder[0]}\x1f{folder[1]}"}
        with self.pool.conn() as c:
            for _ in range(2):
                r = c.execute(_INSERT_MANY, args).fetchone()
                if r is not None:
                    self._arrived(folder, r[1])
                    return [(r[0], r[1] + i) for i in range(len(items))]
                self._ensure(c, folder)
        raise FolderError("no such mailbox")

    def append(self, folder: Folder, data: bytes, flags: frozenset[str] = frozenset(),
               internaldate: float | None = None) -> tuple[int, int]:
        lf = data.replace(b"\r\n", b"\n")
        flags = frozenset(x for x in flags if x != F.RECENT)
        if len(lf) <= CHUNK:
            return self.insert_one(folder, b"", lf, flags, internaldate, create=folder[1] == "INBOX")
        with self.pool.tx() as c:
            body = store_body(c, [lf])
            return self.insert(c, folder, b"", body, flags, internaldate, create=folder[1] == "INBOX")

    def store_flags(self, folder: Folder, changes: Iterable[tuple[int, frozenset[str]]], mode: str = "set",
                    current: dict[int, Msg] | None = None, *, unchangedsince: int | None = None,
                    modified: set[int] | None = None) -> dict[int, Msg]:
        """Flags of each message (RFC 3501 §6.4.6): "add"/"remove" apply to the flags as they are at commit time
        (the rows are locked), so two nodes changing different flags never undo each other. ``unchangedsince``
        (RFC 7162 §3.1.3): a message whose mod-sequence is above it is left alone, its UID added to ``modified``."""
        if mode not in ("set", "add", "remove"):
            raise ValueError(f"bad mode {mode!r}")
        wanted = {uid: frozenset(x for x in given if x != F.RECENT) for uid, given in changes}
        out: dict[int, Msg] = {}
        if not wanted:
            return out
        with self.pool.tx() as c:
            r = c.execute("SELECT id FROM mail_folders WHERE account=%s AND name=%s FOR UPDATE", folder).fetchone()
            if r is None:
                return out
            fid = r[0]
            rows = [_msg(x) for x in c.execute(f"SELECT {_COLS} FROM mail_messages WHERE folder=%s AND uid = ANY(%s) "
                                               "ORDER BY uid FOR UPDATE", (fid, list(wanted)))]
            changed = []
            for m in rows:
                if unchangedsince is not None and m.modseq > unchangedsince:
                    if modified is not None:
                        modified.add(m.uid)
                    if current is not None:
                        current[m.uid] = m
                    continue
                given = wanted[m.uid]
                new = given if mode == "set" else (m.flags | given if mode == "add" else m.flags - given)
                if current is not None:
                    current[m.uid] = m
                if new != m.flags:
                    changed.append((m, new))
            if changed:
                modseq = c.execute("UPDATE mail_folders SET highestmodseq=highestmodseq+1 WHERE id=%s "
                                   "RETURNING highestmodseq", (fid,)).fetchone()[0]
                with c.cursor() as cur:
                    cur.executemany("UPDATE mail_messages SET flags=%s, modseq=%s WHERE folder=%s AND uid=%s",
                                    [(sorted(new), modseq, fid, m.uid) for m, new in changed])
                for m, new in changed:
                    nm = Msg(m.uid, m.base, m.file, frozenset(new), m.size, m.internaldate, modseq)
                    out[m.uid] = nm
                    if current is not None:
                        current[m.uid] = nm
                self._notify(c, folder)
        return out

    def expunge(self, folder: Folder, uids: Iterable[int], *, only_deleted: bool = False) -> list[int]:
        uids = sorted(set(uids))
        if not uids:
            return []
        with self.pool.tx() as c:
            r = c.execute("SELECT id FROM mail_folders WHERE account=%s AND name=%s FOR UPDATE", folder).fetchone()
            if r is None:
                return []
            cond = " AND %s = ANY(flags)" if only_deleted else ""
            args: tuple[Any, ...] = (r[0], uids, F.DELETED) if only_deleted else (r[0], uids)
            gone = c.execute(f"DELETE FROM mail_messages WHERE folder=%s AND uid = ANY(%s){cond} "
                             "RETURNING uid, size, body_id", args).fetchall()
            if gone:
                modseq = c.execute("UPDATE mail_folders SET highestmodseq=highestmodseq+1, messages=messages-%s, "
                                   "octets=octets-%s WHERE id=%s RETURNING highestmodseq",
                                   (len(gone), sum(g[1] for g in gone), r[0])).fetchone()[0]
                _record_vanished(c, r[0], [g[0] for g in gone], modseq)
                drop_bodies(c, [g[2] for g in gone])
                self._notify(c, folder)
        return sorted(g[0] for g in gone)

    def copy(self, src: Folder, uids: Iterable[int], dst: Folder, *,
             move: bool = False) -> tuple[int, list[tuple[int, int]]]:
        """COPY/MOVE (RFC 3501 §6.4.7, RFC 6851) inside the database: the bodies never leave it."""
        uids = sorted(set(uids))
        with self.pool.tx() as c:
            if dst[1] == "INBOX":
                self._ensure(c, dst)
            ids = {f: c.execute("SELECT id FROM mail_folders WHERE account=%s AND name=%s", f).fetchone()
                   for f in (src, dst)}
            if ids[dst] is None:
                raise FolderError("no such mailbox")
            if ids[src] is None:
                return 0, []
            for f in sorted({ids[src][0], ids[dst][0]}):  # both rows locked in one order: no deadlock
                c.execute("SELECT 1 FROM mail_folders WHERE id=%s FOR UPDATE", (f,))
            rows = c.execute("SELECT uid, size FROM mail_messages WHERE folder=%s AND uid = ANY(%s) ORDER BY uid",
                             (ids[src][0], uids)).fetchall()
            if not rows:
                uv = c.execute("SELECT uidvalidity FROM mail_folders WHERE id=%s", (ids[dst][0],)).fetchone()[0]
                return uv, []
            octets = sum(r[1] for r in rows)
            did, uidvalidity, first, modseq = self._take(c, dst, len(rows), len(rows), octets)
            self._arrived(dst, first)
            pairs = [(r[0], first + i) for i, r in enumerate(rows)]
            c.execute("INSERT INTO mail_messages(folder, uid, base, flags, size, internaldate, modseq, hdr_len, prefix, "
                      "body_id) SELECT %s, p.new, gen_random_uuid()::text, m.flags, m.size, m.internaldate, %s, "
                      "m.hdr_len, m.prefix, m.body_id "
                      "FROM mail_messages m JOIN unnest(%s::bigint[], %s::bigint[]) AS p(old, new) ON m.uid = p.old "
                      "WHERE m.folder=%s", (did, modseq, [p[0] for p in pairs], [p[1] for p in pairs], ids[src][0]))
            if move:
                c.execute("DELETE FROM mail_messages WHERE folder=%s AND uid = ANY(%s)", (ids[src][0], [p[0] for p in pairs]))
                src_modseq = c.execute("UPDATE mail_folders SET highestmodseq=highestmodseq+1, messages=messages-%s, "
                                       "octets=octets-%s WHERE id=%s RETURNING highestmodseq",
                                       (len(rows), octets, ids[src][0])).fetchone()[0]
                _record_vanished(c, ids[src][0], [p[0] for p in pairs], src_modseq)
                self._notify(c, src)
            self._notify(c, dst)
        return uidvalidity, pairs

    def vanished(self, folder: Folder, since: int) -> list[int] | None:
        """RFC 7162 §3.2.5.2: the UIDs expunged after mod-sequence ``since``, ascending; None when the records do
        not reach back that far (a folder copied by ``courrier migrate`` has them from its copy on)."""
        with self.pool.conn() as c:
            r = c.execute("SELECT vanishedfloor FROM mail_folders WHERE account=%s AND name=%s", folder).fetchone()
            if r is not None and since < r[0]:
                return None
            return [r[0] for r in c.execute(
                "SELECT v.uid FROM mail_vanished v JOIN mail_folders f ON f.id=v.folder WHERE f.account=%s AND "
                "f.name=%s AND v.modseq > %s ORDER BY v.uid", (*folder, since))]

    # ------------------------------------------------------------------ subscriptions (RFC 3501 §6.3.6)

    def subscriptions(self, root: str) -> set[str]:
        with self.pool.conn() as c:
            return {r[0] for r in c.execute("SELECT name FROM mail_subscriptions WHERE account=%s", (root,))}

    def subscribe_all(self, c: psycopg.Connection, root: str, names: list[str]) -> None:
        with c.cursor() as cur:
            cur.executemany("INSERT INTO mail_subscriptions(account, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                            [(root, n) for n in names])

    def subscribe(self, root: str, name: str, on: bool = True) -> None:
        with self.pool.conn() as c:
            if on:
                c.execute("INSERT INTO mail_subscriptions(account, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (root, name))
            else:
                c.execute("DELETE FROM mail_subscriptions WHERE account=%s AND name=%s", (root, name))


class _Subscribers:
    """In-process change callbacks by folder, called on the loop (cluster/node.py calls ``notify`` for other
    nodes' changes)."""

    def __init__(self) -> None:
        self.subs: dict[Folder, set[Callable[[], None]]] = {}

    def subscribe(self, folder: Folder, cb: Callable[[], None]) -> Callable[[], None]:
        self.subs.setdefault(folder, set()).add(cb)

        def cancel() -> None:
            s = self.subs.get(folder)
            if s is not None:
                s.discard(cb)
                if not s:
                    self.subs.pop(folder, None)

        return cancel

    def notify(self, folder: Folder) -> None:
        for cb in list(self.subs.get(folder, ())):
            cb()


class PgMailStore:
    """``api.MailStore`` over PostgreSQL: every node of a cluster sees the same accounts' folders."""

    def __init__(self, dsn: str, *, node: str, pool_size: int = 10, timeout: float = 5.0,
                 pool: Pool | None = None) -> None:
        self.dsn = dsn
        self.node = node
        self.pool = pool if pool is not None else Pool(dsn, timeout, size=pool_size, name=node)
        self.executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="courrier-pg")
        self._index = PgIndex(self.pool, node)
        self.subscribers = _Subscribers()

    @property
    def index(self) -> PgIndex:
        return self._index

    @property
    def db_path(self) -> None:
        return None

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(_guard, fn, *args, **kw))

    def notify(self, folder: Folder) -> None:
        self.subscribers.notify(folder)

    def notify_all(self) -> None:
        """Every watched folder (after the notification connection was lost: changes may have been missed)."""
        for folder in list(self.subscribers.subs):
            self.subscribers.notify(folder)

    def subscribe(self, folder: Folder, callback: Callable[[], None]) -> Callable[[], None]:
        return self.subscribers.subscribe(folder, callback)

    # ------------------------------------------------------------------ roots

    def account_root(self, account: str) -> str:
        local, _, domain = account.rpartition("@")
        if not local or not domain or "/" in account or "\x1f" in account:
            raise ValueError(f"unsafe account address {account!r}")
        return account.lower()

    @property
    def capture_root(self) -> str:
        """Never used: capture mode keeps the local store. A root no account address can name."""
        return ""

    def ensure_root(self, root: str) -> None:
        with self.pool.conn() as c:
            PgIndex._ensure(c, (root, "INBOX"))

    def prepare_root(self, root: str) -> None:
        with self.pool.tx() as c:
            for name in ("INBOX", *SPECIAL_USE):
                PgIndex._ensure(c, (root, name))

    def provision(self, root: str) -> bool:
        with self.pool.tx() as c:
            c.execute("INSERT INTO mail_accounts(account) VALUES (%s) ON CONFLICT DO NOTHING", (root,))
            if c.execute("SELECT provisioned FROM mail_accounts WHERE account=%s FOR UPDATE", (root,)).fetchone()[0]:
                return False
            for name in ("INBOX", *DEFAULT_FOLDERS):
                PgIndex._ensure(c, (root, name))
            self._index.subscribe_all(c, root, ["INBOX", *DEFAULT_FOLDERS])
            c.execute("UPDATE mail_accounts SET provisioned=true WHERE account=%s", (root,))
            return True

    # ------------------------------------------------------------------ folders by IMAP name

    def folder(self, root: str, name: str) -> Folder:
        return (root, canonical_name(name))

    def folder_exists(self, root: str, name: str) -> bool:
        try:
            folder = self.folder(root, name)
        except FolderError:
            return False
        if folder[1] == "INBOX":
            return True
        with self.pool.conn() as c:
            return c.execute("SELECT 1 FROM mail_folders WHERE account=%s AND name=%s", folder).fetchone() is not None

    def list_folders(self, root: str) -> list[str]:
        with self.pool.conn() as c:
            names = [r[0] for r in c.execute("SELECT name FROM mail_folders WHERE account=%s AND name <> 'INBOX' "
                                             "ORDER BY name", (root,))]
        return ["INBOX", *names]

    def create_folder(self, root: str, name: str) -> Folder:
        folder = self.folder(root, name)
        if folder[1] == "INBOX":
            raise FolderError("INBOX already exists")
        with self.pool.tx() as c:
            parts = folder[1].split(DELIMITER)
            for k in range(1, len(parts)):  # RFC 3501 §6.3.3: superior names are made too
                PgIndex._ensure(c, (root, DELIMITER.join(parts[:k])))
            if c.execute("INSERT INTO mail_folders(account, name) VALUES (%s, %s) ON CONFLICT DO NOTHING "
                         "RETURNING id", folder).fetchone() is None:
                raise FolderError("mailbox already exists")
        return folder

    def delete_folder(self, root: str, name: str) -> None:
        if is_inbox(normalize(name)):
            raise FolderError("INBOX cannot be deleted")  # RFC 3501 §6.3.4
        folder = self.folder(root, name)
        with self.pool.tx() as c:
            bodies = [r[0] for r in c.execute("SELECT m.body_id FROM mail_messages m JOIN mail_folders f ON "
                                              "f.id=m.folder WHERE f.account=%s AND f.name=%s", folder)]
            if c.execute("DELETE FROM mail_folders WHERE account=%s AND name=%s RETURNING id", folder).fetchone() is None:
                raise FolderError("no such mailbox")
            drop_bodies(c, bodies)
            self._index._notify(c, folder)

    def rename_folder(self, root: str, old: str, new: str) -> None:
        src, dst = self.folder(root, old), self.folder(root, new)
        if src[1] == "INBOX":  # RFC 3501 §6.3.5: INBOX's messages move, INBOX stays (empty)
            self.create_folder(root, new)
            snap = self._index.sync(src)
            self._index.copy(src, [m.uid for m in snap.messages], dst, move=True)
            return
        if dst[1] == src[1] or dst[1].startswith(src[1] + DELIMITER):
            raise FolderError("cannot rename a mailbox into itself or its own child")
        with self.pool.tx() as c:
            if c.execute("SELECT 1 FROM mail_folders WHERE account=%s AND name=%s", dst).fetchone():
                raise FolderError("mailbox already exists")
            moved = c.execute("UPDATE mail_folders SET name = %s || substring(name from %s) WHERE account=%s AND "
                              "(name=%s OR starts_with(name, %s)) RETURNING id",
                              (dst[1], len(src[1]) + 1, root, src[1], src[1] + DELIMITER)).fetchall()
            if not moved:
                raise FolderError("no such mailbox")
            parts = dst[1].split(DELIMITER)
            for k in range(1, len(parts)):
                PgIndex._ensure(c, (root, DELIMITER.join(parts[:k])))
            self._index._notify(c, src)

    def mailbox_id(self, folder: Folder) -> str:
        """RFC 8474 §4 MAILBOXID, from the folder row's own id and UIDVALIDITY (or the one ``courrier migrate`` kept
        from the local store): RENAME updates the row's name only, so it stays (§4.1 MUST NOT change); a folder
        deleted and made again is a new row with a new one."""
        sql = "SELECT id, uidvalidity, mailboxid FROM mail_folders WHERE account=%s AND name=%s"
        with self.pool.conn() as c:
            r = c.execute(sql, folder).fetchone()
            if r is None and folder[1] == "INBOX":
                PgIndex._ensure(c, folder)
                r = c.execute(sql, folder).fetchone()
        if r is None:
            raise FolderError("no such mailbox")
        return r[2] or "F" + hashlib.sha256(f"{r[0]}\x00{r[1]}".encode()).hexdigest()[:24]

    # ------------------------------------------------------------------ delivery

    def folder_for(self, account: str, folder: str | None) -> Folder:
        root = self.account_root(account)
        if not folder or folder.upper() == "INBOX":
            return (root, "INBOX")
        if "/" in folder or folder.startswith("."):
            raise ValueError(f"unsafe folder name {folder!r}")
        return (root, canonical_name(folder))

    def deliver_sync(self, copies: list[tuple[Folder, bytes]], body_chunks: BodySource) -> list[tuple[int, int]]:
        """All copies in one transaction; returns once it has committed (synchronous_commit: on disk). The body is
        written chunk by chunk as it is read (never whole in memory) and shared by the copies."""
        chunks = iter(crlf_to_lf(body_chunks()))
        first: list[bytes] = []
        held = 0
        for chunk in chunks:  # up to one chunk's worth is read ahead to see whether the body is small
            first.append(chunk)
            held += len(chunk)
            if held > CHUNK:
                break
        if held <= CHUNK and len(copies) == 1:
            folder, headers = copies[0]
            return [self._index.deliver_one(folder, headers, b"".join(first))]
        out: dict[int, tuple[int, int]] = {}
        with self.pool.tx() as c:
            body = store_body(c, itertools.chain(first, chunks))  # streamed from the spool, one body for every copy
            # folder rows locked in one order by every node: concurrent deliveries never deadlock
            for i, (folder, headers) in sorted(enumerate(copies), key=lambda x: x[1][0]):
                out[i] = self._index.insert(c, folder, headers, body, create=True)
        return [out[i] for i in range(len(copies))]

    async def deliver(self, copies: list[tuple[Folder, bytes]], body_chunks: BodySource,
                      size: int | None = None) -> list[tuple[int, int]]:
        return await self.run(self.deliver_sync, copies, body_chunks)

    def usage(self, root: str, *, exact: bool = False) -> Usage:
        with self.pool.conn() as c:
            n, o = c.execute("SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(octets), 0) FROM mail_folders "
                             "WHERE account=%s", (root,)).fetchone()
        return Usage(int(n), int(o))

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.pool.close()


def _guard(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Runs store work; a database error that is no outage (a bug, a constraint) still reaches the caller as
    what it is, an outage as ``Unavailable`` (already raised by the pool)."""
    try:
        return fn(*args, **kw)
    except (psycopg.OperationalError, psycopg.InterfaceError) as e:
        raise Unavailable(e) from None


def node_name(configured: str) -> str:
    return configured or os.uname().nodename
