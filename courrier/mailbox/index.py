"""The mailbox index: UIDs, UIDVALIDITY, modification sequences and flags of Maildir messages, in SQLite.

The Maildir is the truth; the index is what IMAP and POP3 need on top of it (RFC 3501 §2.3.1: a UID never changes
and never comes back within one UIDVALIDITY). Files that appear or vanish behind our back (mutt, Dovecot, local
delivery, another process) are noticed by :meth:`MailIndex.sync`: it compares the directory listing with the index
and assigns UIDs to new files, forgets vanished ones and reads flags changed in file names.

A listing is skipped when the ``new/`` and ``cur/`` directory mtimes are unchanged — but only when they are older
than two seconds, because a directory changed twice within one timestamp tick would otherwise hide the second change
(Dovecot takes the same precaution).

Mod-sequences (RFC 7162 §3.1.1): every change of a folder takes the next value of its HIGHESTMODSEQ and gives it to
the messages it changed; an expunge leaves a record (UID, mod-sequence) in ``mbox_vanished`` for VANISHED (EARLIER)
(RFC 7162 §3.2.5.2). The Maildir keeps what an index rebuild needs (mailbox/uidlist.py: ``courrier-uidlist``) and the
keywords as file-name letters (mailbox/keywords.py: ``dovecot-keywords``).

Each folder has an in-memory copy of its rows, guarded by a per-folder lock; the ``highestmodseq`` column is bumped by
every change, so a process that sees another value reloads from the database. Every method blocks on the disk:
callers run them in the store's thread pool.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from courrier import db, log
from courrier.mailbox import flags as F
from courrier.mailbox import maildir, uidlist
from courrier.mailbox.api import Msg, Snapshot, Stream, Usage, crlf_size, header_end_lf, to_crlf
from courrier.mailbox.keywords import Keywords

_ARRIVAL_LANDS = 600.0  # seconds: a delivery's count whose file the index never saw is dropped after this
_TRUST_MTIME_AFTER = 2.0  # seconds: a directory mtime younger than this may hide a change made in the same tick
VANISHED_KEEP = 100_000  # expunge records kept per folder (RFC 7162 §3.2.5.2); older ones raise the folder's floor
READ_BLOCK = 1 << 20  # octets per read of a message sent in pieces (FolderIndex.open)
HEADER_CACHE_BYTES = 64 << 20  # per index: header sections kept in memory (Dovecot keeps them in its cache file)


UIDVALIDITY_FILE = "courrier-uidvalidity"  # in each Maildir, like Dovecot's dovecot-uidvalidity
_SENTINEL = "\x00uidvalidity-high-water"  # mbox_folders row keeping the highest UIDVALIDITY of deleted folders


def _read_uidvalidity(path: Path) -> int:
    try:
        return int((path / UIDVALIDITY_FILE).read_text().strip() or 0)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return 0


def _write_uidvalidity(path: Path, value: int) -> None:
    """Records the folder's UIDVALIDITY in its Maildir (atomically); a folder that does not exist yet gets none."""
    if not (path / "cur").is_dir():
        return
    tmp = path / "tmp" / f"{UIDVALIDITY_FILE}.{os.getpid()}.{threading.get_ident()}"
    try:
        with open(tmp, "w") as fh:
            fh.write(f"{value}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path / UIDVALIDITY_FILE)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


class _Folder:
    def __init__(self, key: str) -> None:
        self.key = key
        self.id = 0
        self.uidvalidity = 0
        self.uidnext = 1
        self.modseq = 0
        self.msgs: dict[int, Msg] = {}
        self.by_base: dict[str, int] = {}
        self.stamp: tuple[int, int] | None = None  # new/ and cur/ mtimes of the last listing, once 2 s old
        self.own: tuple[int, int] | None = None  # ... of the last listing or of our own last change, however young
        self.snapshot: Snapshot | None = None
        self.lock = threading.RLock()
        self.recent_floor = 0
        self.headers: dict[int, bytes] = {}  # uid → header section with CRLF (immutable: a message never changes)
        self.octets = 0  # sum of the messages' sizes: stored with every write (the quota's usage, RFC 9208)
        self.floor = 0  # RFC 7162 §3.2.5.2: expunges at or below this mod-sequence have no record
        self.journal: list[str] = []  # courrier-uidlist lines of the write in progress
        self.uidlist_lines = 0  # lines in the folder's courrier-uidlist (rewritten once it doubles its content)
        self.uidlist_base = 0  # ... its lines when it was last rewritten
        self.keywords: Keywords | None = None

    def kw(self, path: Path) -> Keywords:
        if self.keywords is None:
            self.keywords = Keywords(path)
        return self.keywords

    def put(self, m: Msg) -> None:
        old = self.msgs.get(m.uid)
        self.octets += m.size - (old.size if old is not None else 0)
        self.msgs[m.uid] = m
        self.by_base[m.base] = m.uid
        self.snapshot = None

    def drop(self, uid: int) -> Msg | None:
        m = self.msgs.pop(uid, None)
        self.headers.pop(uid, None)
        if m is not None:
            self.octets -= m.size
            self.by_base.pop(m.base, None)
            self.snapshot = None
        return m


def _info(file: str) -> str:
    """"cur/base:2,FSa" → "FSa"."""
    return F.split_name(file.rsplit("/", 1)[-1])[1]


class MailIndex:
    """UIDs and flags for every Maildir under ``data_dir`` (and any other path it is given)."""

    def __init__(self, db_path: Path, data_dir: Path) -> None:
        self.db_path = db_path
        self.data_dir = data_dir.resolve()
        self._local = threading.local()
        self._folders: dict[str, _Folder] = {}
        self._lock = threading.Lock()
        self._header_bytes = 0
        db.connect(db_path).close()  # create + migrate once

    # ------------------------------------------------------------------ plumbing

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = db.connect(self.db_path)
        return c

    def key(self, path: Path) -> str:
        p = Path(os.path.abspath(path))
        try:
            return str(p.relative_to(self.data_dir))
        except ValueError:
            return str(p)

    def _path_of(self, key: str) -> Path:
        return Path(key) if os.path.isabs(key) else self.data_dir / key

    def _folder(self, path: Path) -> _Folder:
        k = self.key(path)
        with self._lock:
            f = self._folders.get(k)
            if f is None:
                f = self._folders[k] = _Folder(k)
        return f

    def _load(self, f: _Folder, c: sqlite3.Connection) -> None:
        """(Re)reads the folder's rows; creates the folder row with a fresh UIDVALIDITY when missing."""
        q = "SELECT id, uidvalidity, uidnext, highestmodseq, vanishedfloor, recentfloor FROM mbox_folders WHERE path=?"
        row = c.execute(q, (f.key,)).fetchone()
        path = self._path_of(f.key)
        if row is None:
            self._create(f, c, path)
            row = c.execute(q, (f.key,)).fetchone()
        fresh = f.id == 0
        if row[1] != f.uidvalidity:
            f.headers = {}
            f.recent_floor = 0
        f.id, f.uidvalidity, f.uidnext, f.modseq, f.floor = row[0], row[1], row[2], row[3], row[4]
        f.recent_floor = max(f.recent_floor, row[5])  # RFC 3501 §2.3.2: \Recent kept across restarts
        f.msgs, f.by_base, f.snapshot, f.stamp, f.octets = {}, {}, None, None, 0
        for r in c.execute("SELECT uid, base, file, flags, size, internaldate, modseq FROM mbox_messages "
                           "WHERE folder=? ORDER BY uid", (f.id,)):
            f.put(Msg(r[0], r[1], r[2], frozenset(r[3].split()) if r[3] else frozenset(), r[4], r[5], r[6]))
        if fresh:
            head = uidlist.head(path)
            if head is None or head[:2] != (f.key, f.uidvalidity):
                self._rewrite_uidlist(f, c, path)
            else:
                f.uidlist_lines = f.uidlist_base = head[2]

    def _create(self, f: _Folder, c: sqlite3.Connection, path: Path) -> None:
        """The folder's row, for a folder the index does not know: restored from the Maildir's courrier-uidlist when
        it has one made for this folder (an index rebuild keeps UIDs, UIDVALIDITY and mod-sequences), else new."""
        rec = uidlist.read(path)
        if rec is not None and rec.key == f.key and rec.uidvalidity > 0:
            self._restore(f, c, path, rec)
            return
        # RFC 3501 §2.3.1.1: a folder that gets UIDs afresh gets a UIDVALIDITY it never had before — above every
        # value in the index (the sentinel row remembers deleted folders') and above the one recorded in the
        # Maildir itself, which survives the index being deleted.
        top = c.execute("SELECT MAX(uidvalidity) FROM mbox_folders").fetchone()[0] or 0
        uidvalidity = max(int(time.time()), top + 1, _read_uidvalidity(path) + 1,
                          rec.uidvalidity + 1 if rec is not None else 0)
        _write_uidvalidity(path, uidvalidity)
        c.execute("INSERT INTO mbox_folders(path, uidvalidity, uidnext, highestmodseq, vanishedfloor, recentfloor) "
                  "VALUES (?,?,1,1,0,1)", (f.key, uidvalidity))

    def _restore(self, f: _Folder, c: sqlite3.Connection, path: Path, rec: uidlist.Record) -> None:
        """RFC 3501 §2.3.1.1 allows keeping UIDVALIDITY because every message keeps its UID: the files the record
        names get their UIDs and mod-sequences back; a file whose flags changed meanwhile, and the record's messages
        that are gone, get a mod-sequence above every one before (RFC 7162 §3.1.1: they changed since). Files the
        record does not name get new UIDs at the next listing, as any file that appears."""
        hms = rec.highestmodseq + 1
        cur = c.execute("INSERT INTO mbox_folders(path, uidvalidity, uidnext, highestmodseq, vanishedfloor, "
                        "recentfloor) VALUES (?,?,?,?,?,?)",
                        (f.key, rec.uidvalidity, rec.uidnext, hms, rec.floor, rec.uidnext))
        fid = cur.lastrowid
        kw = f.kw(path)
        rows = []
        seen = set()
        for base, file in self._scan(path).items():
            got = rec.msgs.get(base)
            if got is None:
                continue
            uid, mod, info = got
            now_info = F.split_name(file.split("/", 1)[1])[1]
            try:
                with open(path / file, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    size = crlf_size(fh.read())
            except OSError:
                continue
            flags = F.from_info(now_info) | kw.from_letters(now_info)
            rows.append((fid, uid, base, file, " ".join(sorted(flags)), size, st.st_mtime,
                         mod if now_info == info else hms))
            seen.add(base)
        gone = [(fid, uid, hms) for base, (uid, _, _) in rec.msgs.items() if base not in seen]
        c.executemany("INSERT OR REPLACE INTO mbox_messages(folder, uid, base, file, flags, size, internaldate, modseq) "
                      "VALUES (?,?,?,?,?,?,?,?)", rows)
        c.executemany("INSERT OR REPLACE INTO mbox_vanished(folder, uid, modseq) VALUES (?,?,?)",
                      [(fid, u, m) for u, m in rec.vanished.items()] + gone)
        c.execute("UPDATE mbox_folders SET messages=?, octets=? WHERE id=?", (len(rows), sum(r[5] for r in rows), fid))
        log.event("mailbox.index_restored", path=f.key, uidvalidity=rec.uidvalidity, messages=len(rows),
                  vanished=len(gone))

    def _rewrite_uidlist(self, f: _Folder, c: sqlite3.Connection, path: Path) -> None:
        vanished = c.execute("SELECT uid, modseq FROM mbox_vanished WHERE folder=? ORDER BY uid", (f.id,)).fetchall()
        if len(vanished) > VANISHED_KEEP:  # the oldest records go; a client that synced before them is told more
            cut = sorted(m for _, m in vanished)[len(vanished) - VANISHED_KEEP]
            # the floor first: a reader between the two statements answers from the complement, never from a gap
            c.execute("UPDATE mbox_folders SET vanishedfloor=MAX(vanishedfloor, ?) WHERE id=?", (cut - 1, f.id))
            c.execute("DELETE FROM mbox_vanished WHERE folder=? AND modseq<?", (f.id, cut))
            f.floor = max(f.floor, cut - 1)
            vanished = [(u, m) for u, m in vanished if m >= cut]
        f.uidlist_lines = f.uidlist_base = uidlist.rewrite(
            path, f.key, f.uidvalidity, f.uidnext, f.modseq, f.floor,
            ((m.uid, m.modseq, _info(m.file), m.base) for m in f.msgs.values()), vanished)
        f.journal = []

    @contextmanager
    def _writing(self, f: _Folder) -> Iterator[sqlite3.Connection]:
        """A write transaction on one folder: the in-memory copy is made current under the write lock first, and
        the folder's uidnext and highestmodseq are stored with the changes; once committed, the changes go to the
        Maildir's courrier-uidlist (appended, or the file rewritten once it has doubled)."""
        f.journal = []
        try:
            with db.transaction(self._conn()) as c:
                row = c.execute("SELECT uidvalidity, uidnext, highestmodseq FROM mbox_folders WHERE id=?",
                                (f.id,)).fetchone() if f.id else None
                if row is None or tuple(row) != (f.uidvalidity, f.uidnext, f.modseq):
                    self._load(f, c)
                yield c
                c.execute("UPDATE mbox_folders SET uidnext=?, highestmodseq=?, messages=?, octets=? WHERE id=?",
                          (f.uidnext, f.modseq, len(f.msgs), f.octets, f.id))
        except BaseException:
            f.journal = []
            raise
        if f.journal:
            path = self._path_of(f.key)
            f.uidlist_lines += len(f.journal)
            if f.uidlist_lines > 2 * f.uidlist_base + 1000 or not uidlist.append(path, f.journal):
                self._rewrite_uidlist(f, self._conn(), path)
            f.journal = []

    def _write(self, f: _Folder, c: sqlite3.Connection, m: Msg) -> None:
        c.execute("INSERT OR REPLACE INTO mbox_messages(folder, uid, base, file, flags, size, internaldate, modseq) "
                  "VALUES (?,?,?,?,?,?,?,?)", (f.id, m.uid, m.base, m.file, " ".join(sorted(m.flags)), m.size,
                                               m.internaldate, m.modseq))
        f.put(m)
        f.journal.append(uidlist.msg_line(m.uid, m.modseq, _info(m.file), m.base))

    def _dropped(self, f: _Folder, c: sqlite3.Connection, uid: int) -> None:
        """The message is gone: its row goes, an expunge record at the folder's new mod-sequence stays
        (RFC 7162 §3.2.5.2, for VANISHED (EARLIER))."""
        f.drop(uid)
        c.execute("DELETE FROM mbox_messages WHERE folder=? AND uid=?", (f.id, uid))
        c.execute("INSERT OR REPLACE INTO mbox_vanished(folder, uid, modseq) VALUES (?,?,?)", (f.id, uid, f.modseq))
        f.journal.append(uidlist.gone_line(uid, f.modseq))

    def _flags_of(self, f: _Folder, path: Path, info: str, old: frozenset[str] | None = None) -> frozenset[str]:
        """The flags a file name says: system letters, keyword letters (dovecot-keywords), and from ``old`` the
        keywords that have no letter (kept in the index only)."""
        kw = f.kw(path)
        flags = F.from_info(info) | kw.from_letters(info)
        if old:
            lettered = {n.lower() for n in kw.names if n}
            flags |= {x for x in old if F.is_keyword(x) and x.lower() not in lettered}
        return frozenset(flags)

    def _info(self, f: _Folder, path: Path, flags: frozenset[str], old_info: str = "") -> str:
        """The ``:2,`` info letters for ``flags``: keywords get their dovecot-keywords letters (new ones assigned)."""
        kw = f.kw(path)
        letters = kw.letters_for({x for x in flags if F.is_keyword(x)})
        return F.to_info(flags, old_info, letters, kw.known_letters())

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _stamp(path: Path) -> tuple[tuple[int, int] | None, bool]:
        """(new/ and cur/ mtimes, whether they are old enough to be trusted alone); (None, False) without them."""
        try:
            a, b = os.stat(path / "new"), os.stat(path / "cur")
        except FileNotFoundError:
            return None, False
        newest = max(a.st_mtime, b.st_mtime)
        return (a.st_mtime_ns, b.st_mtime_ns), time.time() - newest >= _TRUST_MTIME_AFTER

    def _changed_by_us(self, f: _Folder, path: Path, before: tuple[int, int] | None) -> None:
        """After a change of our own: when the directories were as last listed just before it (``before``), their
        new mtimes are ours and the next listing may be skipped (``sync``); otherwise the next sync lists."""
        raw, _ = self._stamp(path)
        f.own = raw if before is not None and before == f.own else None
        f.stamp = None

    @staticmethod
    def _scan(path: Path) -> dict[str, str]:
        """base name → "new/…" or "cur/…". new/ is listed first so a message moved to cur/ meanwhile is still seen."""
        out: dict[str, str] = {}
        for sub in ("new", "cur"):
            try:
                it = os.scandir(path / sub)
            except FileNotFoundError:
                continue
            with it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    out[F.split_name(e.name)[0]] = f"{sub}/{e.name}"
        return out

    def sync(self, path: Path, *, force: bool = False) -> Snapshot:
        """The folder as it is on disk now, with UIDs; new files get the next UIDs, vanished ones are forgotten."""
        f = self._folder(path)
        with f.lock:
            c = self._conn()
            row = c.execute("SELECT uidvalidity, uidnext, highestmodseq FROM mbox_folders WHERE id=?",
                            (f.id,)).fetchone() if f.id else None
            if row is None or tuple(row) != (f.uidvalidity, f.uidnext, f.modseq):
                with db.transaction(c):
                    self._load(f, c)
            # The listing is skipped when the directories are as last seen: trusted alone once 2 s old (a change
            # within one timestamp tick could hide behind the same mtime, as Dovecot knows); while younger, when
            # they are as our last listing or our own last change left them, and listed once more when they turn
            # 2 s old, so a change another program made in that same tick shows within 2 s.
            raw, old = self._stamp(path)
            if force or raw is None or (raw != f.stamp if old else raw != f.own):
                self._rescan(f, path)
                f.stamp, f.own = (raw if old else None), raw
            if f.snapshot is None:
                f.snapshot = Snapshot(f.uidvalidity, f.uidnext, f.modseq, tuple(f.msgs.values()))
            return f.snapshot

    def _rescan(self, f: _Folder, path: Path) -> None:
        disk = self._scan(path)
        gone = [uid for base, uid in f.by_base.items() if base not in disk]
        if gone:  # a rename racing the listing can hide a file: look once more before calling it expunged
            disk.update(self._scan(path))
            gone = [uid for base, uid in f.by_base.items() if base not in disk]
        new = [(base, file) for base, file in disk.items() if base not in f.by_base]
        moved = [(f.by_base[base], file) for base, file in disk.items()
                 if base in f.by_base and f.msgs[f.by_base[base]].file != file]
        if not (gone or new or moved):
            return
        found = []
        for base, file in new:
            try:
                with open(path / file, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    data = fh.read()
            except FileNotFoundError:
                continue
            except OSError as e:  # a directory or an unreadable file among the messages: skip it, not the folder
                log.event("mailbox.unreadable", level="warn", path=str(path / file), error=str(e)[:200])
                continue
            found.append((st.st_mtime, base, file, crlf_size(data)))
        found.sort(key=_arrival_order)
        try:
            with self._writing(f) as c:
                # files indexed now are counted by their rows: delivery's count of them goes (and counts of files
                # that vanished before the index saw them, once they are old enough not to be still landing)
                c.executemany("DELETE FROM mbox_arrivals WHERE path=? AND base=?", [(f.key, b) for _, b, _, _ in found])
                c.execute("DELETE FROM mbox_arrivals WHERE path=? AND at<?", (f.key, time.time() - _ARRIVAL_LANDS))
                f.modseq += 1
                for uid in gone:
                    self._dropped(f, c, uid)
                for uid, file in moved:
                    old = f.msgs[uid]
                    flags = self._flags_of(f, path, _info(file), old.flags)
                    self._write(f, c, replace(old, file=file, flags=flags, modseq=f.modseq))
                for mtime, base, file, size in found:
                    if base in f.by_base:
                        continue
                    flags = self._flags_of(f, path, _info(file))
                    self._write(f, c, Msg(f.uidnext, base, file, flags, size, mtime, f.modseq))
                    f.uidnext += 1
        except BaseException:
            f.stamp = f.own = None
            raise

    def _open_fd(self, path: Path, m: Msg) -> int | None:
        """A descriptor of the message's file, found again when a flag change elsewhere renamed it; None when gone."""
        file = m.file
        for _ in range(3):
            try:
                return os.open(f"{path}/{file}", os.O_RDONLY)
            except FileNotFoundError:  # renamed by a flag change elsewhere, or gone
                cur = self._scan(path).get(m.base)
                if cur is None:
                    return None
                file = cur
        return None

    def open(self, path: Path, m: Msg) -> Stream | None:
        """``api.FolderIndex.open``: the file stays open while it is sent (a rename or an expunge meanwhile does not
        matter), read a block at a time at each pass."""
        fd = self._open_fd(path, m)
        if fd is None:
            return None

        def blocks() -> Iterator[bytes]:
            pos = 0
            while block := os.pread(fd, READ_BLOCK, pos):
                pos += len(block)
                yield block

        closed = []

        def close() -> None:
            if not closed:  # once: the number may belong to another file afterwards
                closed.append(True)
                os.close(fd)

        return Stream(blocks, close)

    def read(self, path: Path, m: Msg) -> bytes | None:
        """The message's bytes as stored (LF); None when it has been expunged meanwhile."""
        fd = self._open_fd(path, m)
        if fd is None:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_head(self, path: Path, m: Msg, limit: int) -> bytes | None:
        """The first ``limit`` octets of the stored file (LF), without reading the rest."""
        try:
            with open(path / m.file, "rb") as fh:
                return fh.read(limit)
        except FileNotFoundError:  # flags changed (renamed) meanwhile: ``read`` finds it again
            data = self.read(path, m)
            return None if data is None else data[:limit]

    def header(self, path: Path, m: Msg) -> bytes | None:
        """The header section (CRLF, with its blank line), kept in memory after the first read."""
        f = self._folder(path)
        h = f.headers.get(m.uid)
        if h is not None:
            return h
        data = self.read(path, m)
        if data is None:
            return None
        h = to_crlf(data[:header_end_lf(data)])
        if self._header_bytes + len(h) > HEADER_CACHE_BYTES:
            with self._lock:
                for other in self._folders.values():
                    other.headers = {}
                self._header_bytes = 0
        f.headers[m.uid] = h
        self._header_bytes += len(h)
        return h

    def claim_recent(self, path: Path) -> set[int]:
        """RFC 3501 §2.3.2 \\Recent: the UIDs no session has seen yet, now claimed by the caller."""
        f = self._folder(path)
        with f.lock:
            uids = {u for u in f.msgs if u >= f.recent_floor}
            if f.recent_floor != f.uidnext and f.id:
                f.recent_floor = f.uidnext
                # RFC 3501 §2.3.2: claimed for good, a restart does not make them \Recent again
                self._conn().execute("UPDATE mbox_folders SET recentfloor=MAX(recentfloor, ?) WHERE id=?",
                                     (f.uidnext, f.id))
            return uids

    def recent_uids(self, path: Path) -> set[int]:
        """The \\Recent UIDs without claiming them: what EXAMINE shows (RFC 3501 §6.3.2 may not change them)."""
        f = self._folder(path)
        with f.lock:
            return {u for u in f.msgs if u >= f.recent_floor}

    def recent_count(self, path: Path) -> int:
        """How many messages no session has seen yet (STATUS RECENT), without claiming them."""
        f = self._folder(path)
        with f.lock:
            return sum(1 for u in f.msgs if u >= f.recent_floor)

    # ------------------------------------------------------------------ changes

    def _locate(self, path: Path, m: Msg) -> str | None:
        if os.path.exists(path / m.file):
            return m.file
        return self._scan(path).get(m.base)

    def store_flags(self, path: Path, changes: Iterable[tuple[int, frozenset[str]]], mode: str = "set",
                    current: dict[int, Msg] | None = None, *, unchangedsince: int | None = None,
                    modified: set[int] | None = None) -> dict[int, Msg]:
        """Changes each message's flags (renaming the file into cur/ with the new info letters); returns what changed.

        ``mode`` "set" replaces the flags, "add"/"remove" apply the given flags to the flags as they are *now*, under
        the folder lock (RFC 3501 §6.4.6 +FLAGS/-FLAGS), so two sessions changing different flags never undo each
        other. When ``current`` is given it receives every existing message asked about, changed or not.

        ``unchangedsince`` (RFC 7162 §3.1.3 STORE UNCHANGEDSINCE): a message whose mod-sequence is above it is left
        alone and its UID added to ``modified`` — checked under the folder lock, with the change.
        """
        if mode not in ("set", "add", "remove"):
            raise ValueError(f"bad mode {mode!r}")
        f = self._folder(path)
        out: dict[int, Msg] = {}
        with f.lock:
            before, _ = self._stamp(path)
            with self._writing(f) as c:
                f.modseq += 1
                for uid, given in changes:
                    m = f.msgs.get(uid)
                    if m is None:
                        continue
                    if current is not None:
                        current[uid] = m
                    if unchangedsince is not None and m.modseq > unchangedsince:
                        if modified is not None:
                            modified.add(uid)
                        continue
                    given = frozenset(x for x in given if x != F.RECENT)
                    new_flags = given if mode == "set" else (m.flags | given if mode == "add" else m.flags - given)
                    if new_flags == m.flags:
                        continue
                    file = self._locate(path, m)
                    if file is None:
                        continue
                    target = f"cur/{m.base}:2,{self._info(f, path, new_flags, _info(file))}"
                    if target != file:
                        try:
                            os.rename(path / file, path / target)
                        except FileNotFoundError:
                            continue
                    nm = replace(m, file=target, flags=new_flags, modseq=f.modseq)
                    self._write(f, c, nm)
                    out[uid] = nm
                    if current is not None:
                        current[uid] = nm
            self._changed_by_us(f, path, before)
        return out

    def append(self, path: Path, data: bytes, flags: frozenset[str] = frozenset(),
               internaldate: float | None = None) -> tuple[int, int]:
        """Stores a message (LF line endings are written); returns (UIDVALIDITY, UID) for RFC 4315 APPENDUID."""
        f = self._folder(path)
        lf = data.replace(b"\r\n", b"\n")
        flags = frozenset(x for x in flags if x != F.RECENT)
        with f.lock:
            self.sync(path)
            before, _ = self._stamp(path)
            info = self._info(f, path, flags)
            final = maildir.write_new(path, [lf], subdir="cur" if flags else "new", info=info, mtime=internaldate)
            st = os.stat(final)
            with self._writing(f) as c:
                f.modseq += 1
                uid = f.uidnext
                f.uidnext += 1
                self._write(f, c, Msg(uid, F.split_name(final.name)[0], f"{final.parent.name}/{final.name}", flags,
                                      crlf_size(lf), st.st_mtime, f.modseq))
            self._changed_by_us(f, path, before)
            return f.uidvalidity, uid

    def expunge(self, path: Path, uids: Iterable[int], *, only_deleted: bool = False) -> list[int]:
        """Deletes the messages' files and rows; returns the UIDs removed.

        ``only_deleted``: skip a message that no longer has \\Deleted now (another session may have cleared it since
        this one last looked: RFC 3501 §6.4.3 removes messages that *have* the flag)."""
        f = self._folder(path)
        done = []
        with f.lock:
            if only_deleted:
                self.sync(path)  # flags another program changed on disk count too
            before, _ = self._stamp(path)
            with self._writing(f) as c:
                f.modseq += 1
                for uid in sorted(set(uids)):
                    m = f.msgs.get(uid)
                    if m is None or (only_deleted and F.DELETED not in m.flags):
                        continue
                    file = self._locate(path, m)
                    if file is not None:
                        try:
                            os.unlink(path / file)
                        except FileNotFoundError:
                            pass
                    self._dropped(f, c, uid)
                    done.append(uid)
            self._changed_by_us(f, path, before)
        if done:
            maildir.fsync_dir(path / "cur")
        return done

    def copy(self, src: Path, uids: Iterable[int], dst: Path, *, move: bool = False) -> tuple[int, list[tuple[int, int]]]:
        """COPY/MOVE (RFC 3501 §6.4.7, RFC 6851): flags and internal date go along; returns (dst UIDVALIDITY, pairs).

        A copy is a hard link under a new name (Dovecot does the same), a move a rename; both are atomic.
        """
        fs, fd = self._folder(src), self._folder(dst)
        pairs: list[tuple[int, int]] = []
        first, second = sorted((fs, fd), key=lambda x: x.key)
        with first.lock, second.lock:
            self.sync(src)
            self.sync(dst)
            before_src, _ = self._stamp(src)
            before_dst, _ = self._stamp(dst)
            maildir.ensure(dst)
            placed: list[tuple[Msg, Msg]] = []
            for uid in sorted(set(uids)):
                m = fs.msgs.get(uid)
                if m is None:
                    continue
                file = self._locate(src, m)
                if file is None:
                    continue
                base = maildir.unique_name()
                info = self._info(fd, dst, m.flags)
                name = f"cur/{base}:2,{info}" if m.flags else f"new/{base}"
                try:
                    if move:
                        os.rename(src / file, dst / name)
                    else:
                        try:
                            os.link(src / file, dst / name)
                        except OSError:
                            with open(src / file, "rb") as fh:
                                written = maildir.write_new(dst, [fh.read()], subdir=name[:3], info=info,
                                                            mtime=m.internaldate)
                            name, base = f"{written.parent.name}/{written.name}", F.split_name(written.name)[0]
                except FileNotFoundError:
                    continue
                placed.append((m, Msg(0, base, name, m.flags, m.size, m.internaldate, 0)))
            for sub in ("new", "cur"):
                maildir.fsync_dir(dst / sub)
            with self._writing(fd) as c:
                fd.modseq += 1
                for m, nm in placed:
                    uid = fd.uidnext
                    fd.uidnext += 1
                    self._write(fd, c, replace(nm, uid=uid, modseq=fd.modseq))
                    pairs.append((m.uid, uid))
            self._changed_by_us(fd, dst, before_dst)
            if move and placed:
                with self._writing(fs) as c:
                    fs.modseq += 1
                    for m, _ in placed:
                        self._dropped(fs, c, m.uid)
                self._changed_by_us(fs, src, before_src)
            return fd.uidvalidity, pairs

    def forget(self, path: Path) -> None:
        """Drops a folder's rows (after DELETE or RENAME): its next use starts with a new UIDVALIDITY."""
        f = self._folder(path)
        with f.lock:
            with db.transaction(self._conn()) as c:
                row = c.execute("SELECT uidvalidity FROM mbox_folders WHERE path=?", (f.key,)).fetchone()
                if row is not None:  # RFC 3501 §2.3.1.1: a re-created folder must not get this UIDVALIDITY again
                    c.execute("INSERT INTO mbox_folders(path, uidvalidity, uidnext, highestmodseq) VALUES (?,?,0,0) "
                              "ON CONFLICT(path) DO UPDATE SET uidvalidity=MAX(uidvalidity, excluded.uidvalidity)",
                              (_SENTINEL, row[0]))
                c.execute("DELETE FROM mbox_vanished WHERE folder IN (SELECT id FROM mbox_folders WHERE path=?)",
                          (f.key,))
                c.execute("DELETE FROM mbox_folders WHERE path=?", (f.key,))
                c.execute("DELETE FROM mbox_arrivals WHERE path=?", (f.key,))
            try:  # a folder made again under this name starts afresh, whatever was left in the directory
                os.unlink(self._path_of(f.key) / uidlist.FILE)
            except OSError:
                pass
            with self._lock:
                self._folders.pop(f.key, None)

    def vanished(self, path: Path, since: int) -> list[int] | None:
        """RFC 7162 §3.2.5.2, §3.2.6: the UIDs expunged after mod-sequence ``since``, ascending; None when the
        records do not reach back that far (the caller then names every UID that is not there)."""
        f = self._folder(path)
        with f.lock:
            self.sync(path)
            if since < f.floor:
                return None
            return [r[0] for r in self._conn().execute(
                "SELECT uid FROM mbox_vanished WHERE folder=? AND modseq>? ORDER BY uid", (f.id, since))]

    # ------------------------------------------------------------------ subscriptions (RFC 3501 §6.3.6)

    def subscriptions(self, root: Path) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT name FROM mbox_subscriptions WHERE root=?",
                                                   (self.key(root),))}

    def subscribe_all(self, root: Path, names: list[str]) -> None:
        self._conn().executemany("INSERT OR IGNORE INTO mbox_subscriptions(root, name) VALUES (?,?)",
                                 [(self.key(root), n) for n in names])

    def subscribe(self, root: Path, name: str, on: bool = True) -> None:
        if on:
            self._conn().execute("INSERT OR IGNORE INTO mbox_subscriptions(root, name) VALUES (?,?)",
                                 (self.key(root), name))
        else:
            self._conn().execute("DELETE FROM mbox_subscriptions WHERE root=? AND name=?", (self.key(root), name))

    # ------------------------------------------------------------------ quota usage (RFC 9208)

    def arrived(self, items: Iterable[tuple[Path, str, int]]) -> None:
        """Counts messages delivered into folders (``(folder, base name, octets)`` each) until the index takes them
        in: delivery writes Maildir files without the index (``MaildirStore.deliver``), so the usage would miss them.

        A message the index has already taken in (a session listed the folder between the file's rename and this
        call) is not counted again: the check and the insert are one statement, ordered against the listing's own
        transaction by SQLite's write lock."""
        now = time.time()
        rows = [(self.key(path), base, octets, now, self.key(path), base) for path, base, octets in items]
        with db.transaction(self._conn()) as c:
            c.executemany("INSERT OR IGNORE INTO mbox_arrivals(path, base, octets, at) SELECT ?,?,?,? WHERE NOT EXISTS "
                          "(SELECT 1 FROM mbox_messages m JOIN mbox_folders f ON m.folder=f.id "
                          "WHERE f.path=? AND m.base=?)", rows)

    def usage(self, root: Path) -> Usage:
        """The messages and octets of ``root`` and the folders under it: the counts stored with each folder's row
        plus what was delivered since the index last listed it — a few rows read by an index range, no listing.
        ``root/`` ≤ key < ``root0`` is every path under root ("0" follows "/" in ASCII)."""
        k = self.key(root)
        under = "WHERE path=? OR (path>=? AND path<?)"
        c = self._conn()
        n1, o1 = c.execute(f"SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(octets), 0) FROM mbox_folders {under}",
                           (k, k + "/", k + "0")).fetchone()
        n2, o2 = c.execute(f"SELECT COUNT(*), COALESCE(SUM(octets), 0) FROM mbox_arrivals {under}",
                           (k, k + "/", k + "0")).fetchone()
        return Usage(n1 + n2, o1 + o2)


_OUR_NAME = re.compile(r"^(\d+)\.M(\d+)P\d+Q(\d+)\.")  # maildir.unique_name: <secs>.M<usecs>P<pid>Q<n>.<host>


def _arrival_order(item: tuple[float, str, str, int]) -> tuple[float, tuple[int, int, int], str]:
    """New files get UIDs in write order: by mtime, then — within one mtime tick — by the time and counter written
    in our own names (``M<usecs>`` is not zero-padded, so comparing names as text would put M99 after M100)."""
    mtime, base = item[0], item[1]
    m = _OUR_NAME.match(base)
    return mtime, ((int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)), base
