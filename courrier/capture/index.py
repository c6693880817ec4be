"""The SQLite index of captured mail (tables of migration ``0030_capture.sql`` in ``courrier.db``).

The index is a cache of what the Maildir files hold — every column can be recomputed from a file (see
``CaptureStore.reindex``) — so it lives in the shared database with ``synchronous=NORMAL``: a crash may lose the
last index rows, never a message, and the next start's scan puts them back.

One connection, used under one lock by whichever thread calls (the writer thread inserts, the web layer's threads
read): SQLite serialises writers anyway, and a single connection keeps the FTS5 table and its rows in step.

New rows go through ``submit``: one writer thread takes every row queued meanwhile and inserts them in ONE
transaction (group commit) — a commit and an FTS5 segment flush per batch instead of per message. The SMTP path does
not wait for it (the 250 promises the fsync'ed file, not the cache); instead every read and every other write first
waits for the rows submitted before it (``_barrier``), so a reader in this process always sees every message whose
250 was sent before its call. Readers in other processes (tests) may see a row a few milliseconds after the 250.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from courrier import db, log


@dataclass
class IndexRow:
    id: str
    file: str
    created: float
    date: float | None
    message_id: str
    return_path: str
    from_: dict[str, str]
    to: list[dict[str, str]]
    cc: list[dict[str, str]]
    bcc: list[dict[str, str]]
    reply_to: list[dict[str, str]]
    subject: str
    size: int
    attachments: int
    inline: int
    read: bool
    username: str
    snippet: str
    envelope: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    headers: list[list[str]] = field(default_factory=list)  # parse.header_pairs: ``header:`` searches
    search_addresses: str = ""
    search_body: str = ""
    # [capture] tag_rules compiled (capture/arrival.py): (SQL condition on m, parameters, tags), checked at insert
    rules: tuple[tuple[str, tuple[object, ...], tuple[str, ...]], ...] = ()


# A message's capture mailboxes (issue 14, Mailpit's most requested feature): each envelope recipient (RCPT TO,
# RFC 5321 §4.1.1.3, the bare address, lowercased) and the SMTP AUTH user (RFC 4954) when the client authenticated.
# Both are in the row already (``envelope`` JSON ``rcpts``, ``username``): read with SQLite's json_each, no new column.
MAILBOX_WHERE = ("(lower(m.username) = ? OR EXISTS (SELECT 1 FROM json_each(m.envelope, '$.rcpts') r "
                 "WHERE lower(r.value) = ?))")
MAX_MAILBOXES = 1000  # the picker's list; a capture server with more recipients than this shows the busiest


def mailbox_where(name: str) -> tuple[str, list[object]]:
    """The SQL condition on ``m`` (and its parameters) for the messages of the capture mailbox ``name``."""
    n = name.strip().lower()
    return MAILBOX_WHERE, [n, n]


def _j(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


class CaptureIndex:
    MAX_BATCH = 256

    def __init__(self, db_path: Path) -> None:
        self.conn = db.connect(db_path, check_same_thread=False)
        self.lock = threading.RLock()
        self._queue: queue.SimpleQueue[tuple[Callable[[], IndexRow], Future[IndexRow]] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._progress = threading.Condition()
        self._submitted = 0
        self._committed = 0
        # Called in the writer thread with the rows of each committed batch, before readers are let through
        # (CaptureStore: events and retention, once per batch rather than once per message).
        self.after_batch: Callable[[list[IndexRow]], None] | None = None

    def close(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        with self.lock:
            self.conn.close()

    # ------------------------------------------------------------------ writes

    def submit(self, make: Callable[[], IndexRow]) -> Future[IndexRow]:
        """Queues a row for the writer thread, as a function that builds it (parsing runs there, after the 250);
        the future gives the row once committed, or the error (sqlite3.IntegrityError for a known id)."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="courrier-capture-index", daemon=True)
                self._writer.start()
        fut: Future[IndexRow] = Future()
        with self._progress:
            self._submitted += 1
            self._queue.put((make, fut))
        return fut

    def _barrier(self, timeout: float = 60.0) -> None:
        """Waits until every row submitted so far is committed (read-your-writes for this process)."""
        if self._writer is None or threading.current_thread() is self._writer:
            return
        with self._progress:
            target = self._submitted
            self._progress.wait_for(lambda: self._committed >= target, timeout)

    def _done(self, n: int) -> None:
        with self._progress:
            self._committed += n
            self._progress.notify_all()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(more)
            built: list[tuple[IndexRow, Future[IndexRow]]] = []
            failed: list[tuple[Future[IndexRow], BaseException]] = []
            for make, fut in batch:
                try:
                    built.append((make(), fut))
                except Exception as e:  # an unreadable message must not stop the others
                    failed.append((fut, e))
            results: list[tuple[Future[IndexRow], IndexRow | BaseException]] = []
            try:
                self.insert_many([r for r, _ in built])
                results = [(fut, r) for r, fut in built]
            except sqlite3.Error:
                for r, fut in built:  # one bad row (a duplicate id) must not fail the others
                    try:
                        self.insert(r)
                        results.append((fut, r))
                    except sqlite3.Error as e:
                        results.append((fut, e))
            # Futures, then the batch hook (events, retention): both run here, before readers are let through.
            for fut, res in results + failed:
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
            if self.after_batch is not None:
                rows = [res for _, res in results if not isinstance(res, BaseException)]
                try:
                    if rows:
                        self.after_batch(rows)
                except Exception as e:  # retention or an event subscriber failing must not stop the writer
                    log.event("capture.after_batch_failed", level="error", error=repr(e))
            self._done(len(batch))

    def insert(self, r: IndexRow) -> int:
        """Adds one message; raises sqlite3.IntegrityError when its id is already indexed."""
        return self.insert_many([r])[0]

    def insert_many(self, rows: list[IndexRow]) -> list[int]:
        """Adds messages in one transaction (all or none); returns their seqs."""
        with self.lock:
            with db.transaction(self.conn) as c:
                return [self._insert_one(c, r) for r in rows]

    def insert_and_trim(self, rows: list[IndexRow], max_messages: int,
                        remove: Callable[[sqlite3.Row], None]) -> tuple[list[bool], list[sqlite3.Row]]:
        """Adds messages and applies ``max_messages`` in ONE transaction (the disk-writer process's path, once per
        round): no reader ever sees more than ``max_messages``. ``remove(row)`` deletes a pruned message's file.
        Returns, per row, whether it was added (False: its id was indexed already, e.g. by a scan), and the pruned
        rows (seq, id, file, read)."""
        with self.lock:
            with db.transaction(self.conn) as c:
                added = []
                for r in rows:
                    try:
                        self._insert_one(c, r)
                        added.append(True)
                    except sqlite3.IntegrityError:  # the statement is undone, the transaction goes on
                        added.append(False)
                doomed: list[sqlite3.Row] = []
                if max_messages:
                    (total,) = c.execute("SELECT count(*) FROM capture_messages").fetchone()
                    if total > max_messages:
                        doomed = c.execute("SELECT seq, id, file, read FROM capture_messages "
                                           "ORDER BY created ASC, seq ASC LIMIT ?", (total - max_messages,)).fetchall()
                        for d in doomed:
                            remove(d)
                        self._delete_rows(c, [d["seq"] for d in doomed])
            return added, doomed

    @staticmethod
    def _insert_one(c: sqlite3.Connection, r: IndexRow) -> int:
        cur = c.execute(
            "INSERT INTO capture_messages (id, file, created, date, message_id, return_path, from_json, "
            "to_json, cc_json, bcc_json, reply_to_json, subject, size, attachments, inline, read, username, "
            "snippet, envelope, headers) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (r.id, r.file, r.created, r.date, r.message_id, r.return_path, _j(r.from_), _j(r.to), _j(r.cc),
             _j(r.bcc), _j(r.reply_to), r.subject, r.size, r.attachments, r.inline, int(r.read),
             r.username, r.snippet, _j(r.envelope), _j(r.headers)))
        seq = cur.lastrowid
        assert seq is not None
        c.executemany("INSERT OR IGNORE INTO capture_tags (seq, tag) VALUES (?, ?)",
                      [(seq, t) for t in r.tags])
        c.execute("INSERT INTO capture_fts (rowid, subject, addresses, body) VALUES (?,?,?,?)",
                  (seq, r.subject, r.search_addresses, r.search_body))
        for where, params, tags in r.rules:  # the search run on this one message, as Mailpit's tag filters
            if c.execute(f"SELECT 1 FROM capture_messages m WHERE m.seq = ? AND ({where})", (seq, *params)).fetchone():
                new = [t for t in tags if t not in r.tags]
                c.executemany("INSERT OR IGNORE INTO capture_tags (seq, tag) VALUES (?, ?)", [(seq, t) for t in new])
                r.tags.extend(new)  # the ``new`` event's summary shows them
        return seq

    @staticmethod
    def _delete_rows(c: sqlite3.Connection, seqs: Sequence[int]) -> None:
        """Removes messages' rows from the table, the tags and the full-text index (inside the caller's transaction),
        in chunks that stay under SQLite's bound-parameter limit."""
        for i in range(0, len(seqs), 500):
            chunk = list(seqs[i:i + 500])
            marks = ",".join("?" * len(chunk))
            c.execute(f"DELETE FROM capture_fts WHERE rowid IN ({marks})", chunk)
            c.execute(f"DELETE FROM capture_tags WHERE seq IN ({marks})", chunk)
            c.execute(f"DELETE FROM capture_messages WHERE seq IN ({marks})", chunk)

    def delete_seqs(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        self._barrier()
        with self.lock:
            with db.transaction(self.conn) as c:
                self._delete_rows(c, seqs)

    def clear(self) -> None:
        self._barrier()
        with self.lock:
            with db.transaction(self.conn) as c:
                c.execute("DELETE FROM capture_fts")
                c.execute("DELETE FROM capture_tags")
                c.execute("DELETE FROM capture_messages")

    def set_read(self, seqs: Iterable[int], read: bool) -> None:
        self._barrier()
        with self.lock:
            self.conn.executemany("UPDATE capture_messages SET read = ? WHERE seq = ?",
                                  [(int(read), s) for s in seqs])

    def set_file(self, seq: int, file: str) -> None:
        self._barrier()
        with self.lock:
            self.conn.execute("UPDATE capture_messages SET file = ? WHERE seq = ?", (file, seq))

    def set_auth(self, msg_id: str, terms: str) -> None:
        """Keeps a message's SPF/DKIM/DMARC outcome as search terms (``auth:``; see web/verdicts.py)."""
        with self.lock:
            self.conn.execute("UPDATE capture_messages SET auth = ? WHERE id = ?", (terms, msg_id))

    def set_headers(self, pairs: Sequence[tuple[int, list[list[str]]]]) -> None:
        """Fills the ``headers`` column of rows indexed before it existed (``CaptureStore.backfill_headers``)."""
        with self.lock:
            self.conn.executemany("UPDATE capture_messages SET headers = ? WHERE seq = ?",
                                  [(_j(h), seq) for seq, h in pairs])

    # ------------------------------------------------------------------ reads

    def select(self, where: str = "1", params: Sequence[Any] = (), *, start: int = 0, limit: int = -1,
               columns: str = "m.*", order: str = "m.created DESC, m.seq DESC") -> list[sqlite3.Row]:
        self._barrier()
        with self.lock:
            return self.conn.execute(
                f"SELECT {columns} FROM capture_messages m WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                (*params, limit, max(0, start))).fetchall()

    def count(self, where: str = "1", params: Sequence[Any] = ()) -> tuple[int, int]:
        """(messages, unread) matching ``where``."""
        self._barrier()
        with self.lock:
            row = self.conn.execute(
                f"SELECT count(*), coalesce(sum(m.read = 0), 0) FROM capture_messages m WHERE {where}",
                tuple(params)).fetchone()
        return int(row[0]), int(row[1])

    def mailboxes(self) -> list[tuple[str, int, int]]:
        """(mailbox, messages, unread) of every capture mailbox (``MAILBOX_WHERE``), busiest ``MAX_MAILBOXES`` kept,
        by name. A message sent to its AUTH user counts once (UNION keeps one (seq, name) pair)."""
        self._barrier()
        with self.lock:
            rows = self.conn.execute(
                "SELECT name, count(*), coalesce(sum(read = 0), 0) FROM ("
                " SELECT m.seq, m.read, lower(r.value) AS name FROM capture_messages m, "
                "  json_each(m.envelope, '$.rcpts') r WHERE r.type = 'text' AND r.value != ''"
                " UNION SELECT m.seq, m.read, lower(m.username) FROM capture_messages m WHERE m.username != ''"
                ") GROUP BY name ORDER BY count(*) DESC, name LIMIT ?", (MAX_MAILBOXES,)).fetchall()
        return sorted((str(r[0]), int(r[1]), int(r[2])) for r in rows)

    def by_id(self, id_: str) -> sqlite3.Row | None:
        self._barrier()
        with self.lock:
            return self.conn.execute("SELECT * FROM capture_messages WHERE id = ?", (id_,)).fetchone()

    def tags_of(self, seqs: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {s: [] for s in seqs}
        self._barrier()
        if not seqs:
            return out
        with self.lock:
            for i in range(0, len(seqs), 500):
                chunk = list(seqs[i:i + 500])
                marks = ",".join("?" * len(chunk))
                for row in self.conn.execute(
                        f"SELECT seq, tag FROM capture_tags WHERE seq IN ({marks}) ORDER BY tag", chunk):
                    out[row[0]].append(row[1])
        return out

    def all_tags(self) -> list[str]:
        self._barrier()
        with self.lock:
            return [r[0] for r in self.conn.execute("SELECT DISTINCT tag FROM capture_tags ORDER BY tag COLLATE NOCASE")]

    def file_names(self) -> set[str]:
        """The file (relative to the Maildir: ``new/…`` or ``cur/…``) of every indexed message.

        Rows are streamed and only their file names kept: the periodic scan once built a dict of every row with a
        Path per row, ~0.7 KiB a message of transient peak that the allocator kept as RSS after each scan (issue 17:
        ≤ 150 MB after 100,000 captured)."""
        self._barrier()
        with self.lock:
            cur = self.conn.execute("SELECT file FROM capture_messages")
            cur.row_factory = None
            return {r[0] for r in cur}

    def rows_with_files(self, files: set[str]) -> list[tuple[int, str, str, int]]:
        """(seq, id, file, read) of the indexed messages whose file is one of ``files`` (streamed, as above)."""
        self._barrier()
        with self.lock:
            cur = self.conn.execute("SELECT seq, id, file, read FROM capture_messages")
            cur.row_factory = None
            return [r for r in cur if r[2] in files]
