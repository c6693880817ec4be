"""CaptureStore — the one door to captured mail: Maildir files, their SQLite index, retention and events.

Storage. Each message is kept ONCE, as a Maildir file under ``data_dir/capture/`` (``new/`` while unread, ``cur/``
with the ``S`` flag once read — IMAP and POP3 can serve the folder as an ordinary INBOX), durable before the SMTP
250: SMTP arrivals through the capture journal (``journal.py``: the file written unsynced, the round's records
fdatasync'ed once in ``data_dir/capture-journal``, the files synced by a checkpoint), the API's send and messages over
1 MiB by ``courrier.mailbox.durable.write_new`` (tmp → fsync → rename → fsync dir). Its envelope and its
ID are in the file (``envelope.py``: ``Return-Path``, ``X-Courrier-Envelope``, ``Received`` prepended), so the
SQLite index (``index.py``) is a cache: delete it, and ``reindex()`` — or the next start — rebuilds it with the same
IDs, envelopes, tags and read states.

Python API (what the web layer, POP3/IMAP and tests call). Every method except ``add``/``start``/``aclose`` is
synchronous, thread-safe and short (SQLite + reading one file): call them from Starlette's threadpool (plain ``def``
endpoints) or directly. Results are the typed records of ``records.py`` (Summary, Message, Page); only the web
layer's ``api/mailpit.py`` spells them as Mailpit's JSON.

    store = CaptureStore(data_dir, cfg.capture, db_path=cfg.db_path, hostname=cfg.hostname)
    await store.start()                 # binds events to the running loop, scans the Maildir, starts max_age pruning
    await store.aclose()                # stops the pruning task, closes the index

    # receiving
    id = await store.add(env, hop, msg)                # from the capture role: durable, indexed, events sent
    id = store.add_bytes(data, mail_from="a@x", rcpts=["b@y"], client="127.0.0.1:0", user=None)  # API "send"

    # reading (None when the id is unknown)
    store.list(start=0, limit=50)      -> Page (total, unread, messages_count, messages_unread, start, tags, messages)
    store.search(query, start, limit)  -> Page; messages_count/messages_unread count the matches
    store.summary(id)                  -> Summary (id, message_id, read, from_, to, cc, bcc, reply_to, subject,
                                          created, username, tags, size, attachments, snippet)
    store.get(id)                      -> Message (summary, return_path, date, list_unsubscribe…, text, html,
                                          inline, attachments: [Part]); does NOT mark it read
    store.latest_id()                  -> the newest message's id ("latest" in the API)
    store.parse_errors(ids)            -> {ID: reason} for messages that could be read only in part (error mark)
    store.headers(id)                  -> {"Header-Name": [values…]} of the message as sent
    store.raw(id, trace=False)         -> bytes, CRLF, as the client sent it (trace=True: with our 3 trace fields)
    store.part(id, part_id)            -> (content_type, filename, decoded bytes)
    store.message(id)                  -> email.message.EmailMessage (as sent)
    store.envelope(id)                 -> CapturedEnvelope (mail_from, rcpts, client, helo, tls, user, received…)
    store.path(id)                     -> the Maildir file's current Path
    store.tags()                       -> ["tag", …] in use
    store.counts()                     -> (total, unread);  store.stats() -> {"Total","Unread","Version"}

    # changing (each emits events; returns how many messages changed)
    store.set_read(ids | None, read)   # None: every message
    store.delete(ids | None)           # None: every message ("truncate")
    store.delete_search(query)
    store.prune()                      # retention now (max_messages, max_age); also runs after each add
    store.reindex()                    # rebuild the index from the files (IDs kept)
    store.scan()                       # incremental: index files that appeared, forget files that vanished

    # pause incoming (the inspector's switch): MAIL answers 451 4.3.2 while paused
    store.paused; store.set_paused(True)

    # events (Mailpit's WebSocket frames, see events.py)
    store.events.subscribe(cb)  /  store.events.unsubscribe(cb)   # cb({"Type": "new", "Data": Summary})

Message IDs: 22 random base57 characters (Mailpit's style), written into the file, stable across restarts and
re-indexing. Files that someone else puts into the Maildir (IMAP APPEND, a copy) are adopted at the next scan: given
an envelope from their headers and an ID, rewritten atomically.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from courrier import log
from courrier.capture import journal
from courrier.capture import parse as P
from courrier.capture.api import SQLiteQueries, TotalsFromQueries
from courrier.capture.arrival import Rules, api_arrival, ensure_message_id, message_id_of
from courrier.capture.chaos import Chaos
from courrier.capture.envelope import CapturedEnvelope, new_id, read_envelope, strip_trace, valid_id
from courrier.capture.events import EventHub
from courrier.capture.index import CaptureIndex, IndexRow
from courrier.capture.mimebound import message_from_bytes
from courrier.capture.records import Address, Message, Page, Summary, addresses, message_of
from courrier.capture.search import compile_query
from courrier.capture.writer_jobs import _base, _flags, build_row, envelope_of, trace_fields
from courrier.config import CaptureConfig
from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage
from courrier.mailbox import durable as maildir
from courrier.mailbox.durable import PROCESS_MAX, PROCESS_THREADS, ProcessWriter

_DISK_THREADS = 16  # scans, re-indexing, housekeeping
_WRITER_THREADS = 4  # incoming messages: rounds of a maildir.BatchWriter (one directory fsync per round)
HEAD_READ = 65536
MAX_ERROR_IDS = 1000  # parse_errors: IDs looked up per call (a page of the list is 50)
SCAN_PERIOD = 10.0  # seconds between scans of the Maildir for changes made by IMAP/POP3 clients


class CaptureStore(TotalsFromQueries):
    def __init__(self, data_dir: Path, cfg: CaptureConfig, *, db_path: Path | None = None,
                 hostname: str = "localhost") -> None:
        self.cfg = cfg
        self.hostname = hostname
        self.maildir = maildir.ensure(data_dir / "capture")
        self.db_path = db_path or data_dir / "courrier.db"
        self.index = CaptureIndex(self.db_path)
        self.queries = SQLiteQueries(self.index)  # what the web layer asks of the index (capture/api.py)
        self.events = EventHub()
        self.executor = ThreadPoolExecutor(max_workers=_DISK_THREADS, thread_name_prefix="courrier-capture")
        self.writer = maildir.BatchWriter(_WRITER_THREADS, name="courrier-capture-write")
        self.process_writer = ProcessWriter(PROCESS_THREADS, name="courrier-capture-writer")
        self._events_executor: ThreadPoolExecutor | None = None
        self._backlog: list[tuple[IndexRow, bool, bool]] = []  # (row, added, pruned) not yet published
        self._backlog_lock = threading.Lock()
        self._backlog_busy = False
        self.paused = False
        self.chaos = Chaos(cfg.chaos)  # Mailpit's chaos triggers: set by the API, rolled by the SMTP role
        self._prune_task: asyncio.Task[None] | None = None
        self._prune_lock = threading.Lock()
        self._count = self.index.count()[0]  # messages indexed, kept by this instance: triggers max_messages
        self.index.after_batch = self._indexed_batch
        self._closed = False
        self._journaled = False  # arrivals went through the disk-writer process (and its journal)
        self.rules = Rules.of(cfg)  # tag rules and username tags for new messages (capture/arrival.py)
        self.ignored = 0  # duplicates dropped (Mailpit's SMTPIgnored)
        self.rejected = 0  # SMTP transactions or recipients refused (Mailpit's SMTPRejected), roles/capture.py

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.events.bind(loop)
        await loop.run_in_executor(self.executor, journal.recover, self.maildir)  # before the scan reads the files
        n = await loop.run_in_executor(self.executor, self.scan)
        if n:
            log.event("capture.scanned", indexed=n)
        await loop.run_in_executor(self.executor, self.prune)
        self._prune_task = loop.create_task(self._housekeeping())

    async def _housekeeping(self) -> None:
        """Every few seconds: follow changes others made to the Maildir (scan), apply max_age."""
        period = min(SCAN_PERIOD, max(1.0, self.cfg.max_age / 10)) if self.cfg.max_age else SCAN_PERIOD
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            try:
                await loop.run_in_executor(self.executor, self.scan)
                if self.cfg.max_age:
                    await loop.run_in_executor(self.executor, self.prune)
            except Exception as e:
                log.event("capture.housekeeping_failed", level="error", error=repr(e))

    async def aclose(self) -> None:
        if self._prune_task:
            self._prune_task.cancel()
            self._prune_task = None
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.process_writer.close()
        if self._journaled:  # only a store whose writer wrote the journal: never another process's live segments
            try:
                journal.retire(self.maildir)  # the writer has exited: its files synced, the segments dropped
            except OSError as e:  # the next start recovers from them
                log.event("capture.checkpoint_failed", level="error", error=repr(e))
        if self._events_executor is not None:
            self._events_executor.shutdown(wait=True)
        self.writer.close()
        self.executor.shutdown(wait=True)
        self.index.close()

    def set_paused(self, paused: bool) -> None:
        self.paused = bool(paused)
        log.event("capture.paused" if paused else "capture.resumed")

    # ------------------------------------------------------------------ receiving

    async def add(self, env: Envelope, hop: Hop, msg: ReceivedMessage) -> str:
        """Stores a message from the capture role (its Envelope, the Hop it came by, the message); returns its ID
        once the file is fsync'ed and indexed.

        Messages up to PROCESS_MAX (in memory in the spool) go to the disk-writer process (mailbox/writer.py): it
        builds the envelope record, writes the file durably, parses it into its index row and inserts the rows of
        its round — with ``max_messages`` retention — in one transaction of its own SQLite connection, all outside
        this interpreter's GIL. Here only the events remain. Larger ones: writer threads and the index thread."""
        if self.cfg.ignore_duplicate_ids:
            dup = await asyncio.get_running_loop().run_in_executor(self.executor, self.duplicate_of, msg.read_all())
            if dup is not None:
                return dup
        if msg.size <= PROCESS_MAX:
            self._journaled = True
            id_, path, row, outcome = await self.process_writer.submit(
                "courrier.capture.writer_jobs:capture_job", str(self.maildir), str(self.db_path), self.cfg.max_messages,
                env, hop, msg.read_all(), self.rules)
            if outcome.get("failed"):  # the journal could not make it durable: no 250 (the client retries)
                raise OSError(errno.EIO, f"capture journal: {outcome['failed']}")
            if outcome.get("added") is not None:
                self._indexed_elsewhere(row, outcome)
            else:  # not indexed there (parse or SQLite error): the index thread tries, else the next scan
                err = outcome.get("error") or row

                def make() -> IndexRow:
                    if isinstance(row, IndexRow):
                        return row
                    raise ValueError(f"{path}: {err}")

                self.index.submit(make).add_done_callback(self._indexed)
            return id_
        return await self.writer.submit(self._add_sync, env, hop, msg)

    def _indexed_elsewhere(self, row: IndexRow, outcome: dict[str, Any]) -> None:
        """On the loop, after the disk-writer process indexed ``row`` (and pruned): counts, log line, events."""
        pruned = outcome.get("pruned") or []
        self._count += int(bool(outcome["added"])) - len(pruned)
        if pruned:
            log.event("capture.pruned", count=len(pruned))
        if self.events.active:  # summaries and counts read the index: off the loop, in order (one thread)
            with self._backlog_lock:
                self._backlog.append((row, bool(outcome["added"]), bool(pruned)))
                if self._backlog_busy:
                    return
                self._backlog_busy = True
            if self._events_executor is None:
                self._events_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="courrier-capture-events")
            self._events_executor.submit(self._publish_backlog)

    def _publish_backlog(self) -> None:
        """Publishes what arrived since the last pass: a ``new`` per message, one ``prune``, then ONE ``stats``.

        One ``stats`` per message counted the whole store each time (O(n) at 100,000 messages), so the events thread
        fell behind the arrivals and its queue — each entry holding an index row with the message's text — grew
        without bound (857 MiB of RSS after 100,000 captures, bench/scn_memory.py). Mailpit throttles its ``stats``
        the same way."""
        while True:
            with self._backlog_lock:
                items, self._backlog = self._backlog, []
                if not items:
                    self._backlog_busy = False
                    return
            try:
                for row, added, _ in items:
                    if added:
                        self.events.publish("new", self._summary_of(row.__dict__, row.tags))
                if any(pruned for _, _, pruned in items):
                    self.events.publish("prune", None)
                self.events.publish("stats", self.stats())
            except Exception as e:  # a bad row must not stop the events for good
                log.event("capture.events_failed", level="error", error=repr(e))

    def _add_sync(self, rnd: maildir.Round | None, env: Envelope, hop: Hop, msg: ReceivedMessage) -> str:
        cenv, received = envelope_of(env, hop)
        body = ensure_message_id(msg.read_all().replace(b"\r\n", b"\n"), cenv.id)
        self._write(body, cenv, received, rnd)  # parsed and indexed just after
        return cenv.id

    def duplicate_of(self, data: bytes) -> str | None:
        """``[capture] ignore_duplicate_ids``: the ID of the message already kept with this one's Message-ID, or
        None. A dropped duplicate is counted (``ignored``: Mailpit's ``SMTPIgnored``) and logged."""
        mid = message_id_of(data.replace(b"\r\n", b"\n"))
        if not mid:
            return None
        rows = self.index.select("m.message_id = ?", [mid], limit=1, columns="m.id")
        if not rows:
            return None
        self.ignored += 1
        log.event("capture.duplicate_ignored", message_id=mid[:200], id=rows[0]["id"])
        return str(rows[0]["id"])

    def add_bytes(self, data: bytes, *, mail_from: str, rcpts: list[str], client: str = "127.0.0.1:0",
                  user: str | None = None, helo: str | None = None, listener: str = "api",
                  tags: list[str] | None = None) -> str:
        """Stores a message that did not come over SMTP (the API's send); blocking; returns its ID."""
        if self.cfg.ignore_duplicate_ids:
            dup = self.duplicate_of(data)
            if dup is not None:
                return dup
        body, cenv, received = api_arrival(data, hostname=self.hostname, mail_from=mail_from, rcpts=rcpts,
                                           client=client, user=user, helo=helo, listener=listener, tags=tags)
        self._write(body, cenv, received).result()
        log.event("capture.stored", id=cenv.id, listener=listener, size=len(data), rcpts=len(cenv.rcpts))
        return cenv.id

    def _trace(self, cenv: CapturedEnvelope, received: str) -> bytes:
        return trace_fields(cenv, received)

    def _write(self, data: bytes, cenv: CapturedEnvelope, received: str,
               rnd: maildir.Round | None = None) -> Future[IndexRow]:
        """Durable write of a new message (the 250's promise), then hands it to the index writer thread, which
        parses it and inserts its row with the other sessions' (see index.py). With ``rnd`` the directory fsync is
        the BatchWriter round's, run before the caller is answered."""
        path = maildir.write_new(self.maildir, [self._trace(cenv, received), data],
                                 dir_sync=rnd.sync_dir if rnd is not None else None)
        fut = self.index.submit(lambda: build_row(path, data, cenv, read=False, rules=self.rules))  # arrival: rules
        fut.add_done_callback(self._indexed)
        return fut

    def _indexed(self, fut: Future[IndexRow]) -> None:
        if fut.exception() is not None:  # the file is kept; the next start's scan retries it
            log.event("capture.index_failed", level="error", error=repr(fut.exception()))

    def _indexed_batch(self, rows: list[IndexRow]) -> None:
        """In the index writer thread, once a batch of rows is committed: events, then max_messages retention —
        once per batch (a prune per message cost more than the rest of the capture path)."""
        self._count += len(rows)
        if self.events.active:
            for row in rows:
                self.events.publish("new", self._summary_of(row.__dict__, row.tags))
        if self.cfg.max_messages and self._count > self.cfg.max_messages:  # max_age: the task of start()
            self.prune(False)  # here, so that no reader sees more than max_messages
        elif self.events.active:
            self.events.publish("stats", self.stats())

    def _index_file(self, path: Path, body: bytes, cenv: CapturedEnvelope, read: bool) -> None:
        """Indexes a file found on disk (scan), synchronously."""
        self.index.insert(self._row(path, body, cenv, read))

    def _row(self, path: Path, body: bytes, cenv: CapturedEnvelope, read: bool) -> IndexRow:
        return build_row(path, body, cenv, read)

    # ------------------------------------------------------------------ shaping

    @staticmethod
    def _summary_of(r: Any, tags: list[str]) -> Summary:
        """The Summary of an index row (sqlite3.Row) or of a fresh IndexRow's ``__dict__``."""
        if isinstance(r, dict) and "from_" in r:  # a fresh IndexRow
            frm, to, cc, bcc, rt = r["from_"], r["to"], r["cc"], r["bcc"], r["reply_to"]
        else:
            frm, to, cc, bcc, rt = (json.loads(r[k]) for k in ("from_json", "to_json", "cc_json", "bcc_json",
                                                                 "reply_to_json"))
        return Summary(
            id=r["id"], message_id=r["message_id"], read=bool(r["read"]), from_=Address.of(frm), to=addresses(to),
            cc=addresses(cc), bcc=addresses(bcc), reply_to=addresses(rt), subject=r["subject"],
            created=r["created"], username=r["username"], tags=tags, size=r["size"],
            attachments=r["attachments"], snippet=r["snippet"])

    def _summaries(self, rows: list[sqlite3.Row]) -> list[Summary]:
        tags = self.index.tags_of([r["seq"] for r in rows])
        return [self._summary_of(r, tags[r["seq"]]) for r in rows]

    # ------------------------------------------------------------------ reading

    def _page(self, where: str, params: list[Any], start: int, limit: int) -> Page:
        total, unread = self.index.count()
        if where == "1":
            m_count, m_unread = total, unread
        else:
            m_count, m_unread = self.index.count(where, params)
        rows = self.index.select(where, params, start=start, limit=limit if limit > 0 else -1)
        return Page(total=total, unread=unread, messages_count=m_count, messages_unread=m_unread,
                    start=max(0, start), tags=self.index.all_tags(), messages=self._summaries(rows))

    def list(self, start: int = 0, limit: int = 50) -> Page:
        """Newest first."""
        return self._page("1", [], start, limit)

    def search(self, query: str, start: int = 0, limit: int = 50) -> Page:
        where, params = compile_query(query)
        return self._page(where, params, start, limit)

    def summary(self, id_: str) -> Summary | None:
        row = self.index.by_id(id_)
        if row is None:
            return None
        return self._summaries([row])[0]

    def parse_errors(self, ids: list[str]) -> dict[str, str]:
        """{ID: why it could be read only in part} for those of ``ids`` whose content did not parse whole (the mark
        ``build_row`` keeps in the row's envelope column; no schema change, and a re-index recomputes it)."""
        out: dict[str, str] = {}
        for r in self._rows_for(ids[:MAX_ERROR_IDS], columns="m.id, m.envelope"):
            if '"error"' not in (r["envelope"] or ""):
                continue
            try:
                err = json.loads(r["envelope"]).get("error")
            except (ValueError, AttributeError):
                continue
            if isinstance(err, str) and err:
                out[r["id"]] = err
        return out

    def latest_id(self) -> str | None:
        rows = self.index.select(limit=1, columns="m.id")
        return rows[0]["id"] if rows else None

    def path(self, id_: str) -> Path | None:
        row = self.index.by_id(id_) if valid_id(id_) else None
        if row is None:
            return None
        return self._locate(row["seq"], row["file"])

    def _locate(self, seq: int, file: str) -> Path | None:
        """The file's current path: IMAP clients may have moved it new/ → cur/ or changed its flags.

        new/ is scanned before cur/, the direction files move (Maildir: new → cur, never back), so a file renamed
        while we look is found in one of the two scans; scanning cur/ first missed it (404 on a parallel read)."""
        p = self.maildir / file
        if p.exists():
            return p
        base = _base(Path(file).name)
        for sub in ("new", "cur"):
            try:
                for name in os.listdir(self.maildir / sub):
                    if _base(name) == base:
                        self.index.set_file(seq, f"{sub}/{name}")
                        return self.maildir / sub / name
            except FileNotFoundError:
                pass
        return None

    def _stored(self, id_: str) -> bytes | None:
        # Twice: the file may be renamed (new/ → cur/, a flag change) between finding and reading it.
        for _ in range(2):
            p = self.path(id_)
            if p is None:
                return None
            try:
                return p.read_bytes()
            except FileNotFoundError:
                continue
        return None

    def raw(self, id_: str, trace: bool = False) -> bytes | None:
        data = self._stored(id_)
        if data is None:
            return None
        if not trace:
            data = strip_trace(data)
        return data.replace(b"\n", b"\r\n")

    def message(self, id_: str) -> EmailMessage | None:
        data = self._stored(id_)
        return None if data is None else P.parse_bytes(strip_trace(data))

    def envelope(self, id_: str) -> CapturedEnvelope | None:
        data = self._stored(id_)
        return None if data is None else read_envelope(data[:HEAD_READ])

    def headers(self, id_: str) -> dict[str, list[str]] | None:
        """Every header field of the message as sent, in order of first appearance, values decoded (RFC 2047)."""
        data = self._stored(id_)
        if data is None:
            return None
        return P.header_fields(strip_trace(data))  # the program's one header reader (courrier.mail.headers)

    def part(self, id_: str, part_id: str) -> tuple[str, str, bytes] | None:
        """(content type, file name, decoded content) of one leaf part, found in the same (compat32, bounded) tree
        as the part ids of ``get``; None when the message or the part is unknown."""
        data = self._stored(id_)
        if data is None:
            return None
        part = P.find_part(P.message_of(strip_trace(data)), part_id)
        if part is None:
            return None
        return part.get_content_type(), P.part_filename(part), P.part_bytes(part)

    def get(self, id_: str) -> Message | None:
        row = self.index.by_id(id_) if valid_id(id_) else None
        if row is None:
            return None
        data = self._stored(id_)
        if data is None:
            return None
        msg, p = P.parse(strip_trace(data))
        return message_of(self._summaries([row])[0], msg, p, row["return_path"], row["created"])

    # ------------------------------------------------------------------ changing

    def _rows_for(self, ids: list[str] | None, columns: str = "m.seq, m.id, m.file, m.read") -> list[sqlite3.Row]:
        if ids is None:
            return self.index.select(columns=columns)
        ids = [i for i in ids if valid_id(i)]
        out: list[sqlite3.Row] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out += self.index.select(f"m.id IN ({','.join('?' * len(chunk))})", chunk, columns=columns)
        return out

    def set_read(self, ids: list[str] | None, read: bool) -> int:
        """Marks messages read/unread (Maildir: moved to cur/ with or without the S flag); emits update + stats."""
        changed = []
        for r in self._rows_for(ids):
            if bool(r["read"]) == read:
                continue
            p = self._locate(r["seq"], r["file"])
            if p is not None:
                flags = set(_flags(p.name)) - {"S"} | ({"S"} if read else set())
                name = f"{_base(p.name)}:2,{''.join(sorted(flags))}"
                try:
                    os.rename(p, self.maildir / "cur" / name)
                    self.index.set_file(r["seq"], f"cur/{name}")
                except FileNotFoundError:
                    pass
            changed.append(r)
        self.index.set_read([r["seq"] for r in changed], read)
        for r in changed:
            self.events.publish("update", {"ID": r["id"], "Read": read})
        if changed:
            self.events.publish("stats", self.stats())
        return len(changed)

    def _remove(self, rows: list[sqlite3.Row]) -> None:
        for r in rows:
            p = self._locate(r["seq"], r["file"])
            if p is not None:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        journal.note_deleted(self.maildir, [r["id"] for r in rows])  # recovery must not bring them back
        self.index.delete_seqs([r["seq"] for r in rows])
        self._count = self.index.count()[0]

    def delete(self, ids: list[str] | None) -> int:
        """Deletes messages (None: all of them, Mailpit's "truncate"); emits delete/truncate + stats."""
        rows = self._rows_for(ids)
        self._remove(rows)
        if ids is None:
            self.events.publish("truncate", None)
        else:
            for r in rows:
                self.events.publish("delete", {"ID": r["id"]})
        if rows or ids is None:
            self.events.publish("stats", self.stats())
        log.event("capture.deleted", count=len(rows))
        return len(rows)

    def delete_search(self, query: str) -> int:
        where, params = compile_query(query)
        rows = self.index.select(where, params, columns="m.seq, m.id, m.file, m.read")
        return self.delete([r["id"] for r in rows]) if rows else 0

    def prune(self, wait: bool = True) -> int:
        """Retention: drops messages older than max_age, then the oldest beyond max_messages; emits prune + stats.

        ``wait=False`` (after each add): return at once when another thread is already pruning — it will catch up,
        and the adding threads never queue behind each other here."""
        if not self._prune_lock.acquire(blocking=wait):
            return 0
        try:
            doomed: list[sqlite3.Row] = []
            cols = "m.seq, m.id, m.file, m.read"
            if self.cfg.max_age:
                doomed += self.index.select("m.created < ?", [time.time() - self.cfg.max_age], columns=cols)
            if self.cfg.max_messages:
                total, _ = self.index.count()
                excess = total - len(doomed) - self.cfg.max_messages
                if excess > 0:
                    seen = {r["seq"] for r in doomed}
                    oldest = self.index.select(columns=cols, order="m.created ASC, m.seq ASC",
                                               limit=excess + len(doomed))
                    doomed += [r for r in oldest if r["seq"] not in seen][:excess]
            if not doomed:
                return 0
            self._remove(doomed)
        finally:
            self._prune_lock.release()
        log.event("capture.pruned", count=len(doomed))
        self.events.publish("prune", None)
        self.events.publish("stats", self.stats())
        return len(doomed)

    # ------------------------------------------------------------------ re-indexing

    def reindex(self) -> int:
        """Forgets the whole index and rebuilds it from the Maildir; returns the number of messages indexed."""
        self.index.clear()
        self._count = 0
        n = self.scan()
        self.events.publish("prune", None)
        self.events.publish("stats", self.stats())
        return n

    def scan(self) -> int:
        """Brings the index in step with the files — others (IMAP, POP3, a user) may change the Maildir too:
        indexes new files, forgets vanished ones, follows renames and the S (seen) flag. Runs at start and every
        few seconds (``start()``). Returns how many files were indexed."""
        # the index first, then the directories (a message written and indexed in between is found on disk and its
        # row is there when it is indexed again: IntegrityError, a no-op). Only names are held for the whole store;
        # full rows only for the few files not found as is (gone, or renamed by a client)
        indexed = self.index.file_names()
        fresh: list[str] = []  # on disk, and no row has this name as is: new, or renamed
        for sub in ("new", "cur"):
            with os.scandir(self.maildir / sub) as entries:  # streamed: no list of every name beside the set
                for entry in entries:
                    name = entry.name
                    if not name.startswith("."):
                        rel = f"{sub}/{name}"
                        if rel in indexed:
                            indexed.discard(rel)
                        else:
                            fresh.append(rel)
        unmatched = self.index.rows_with_files(indexed) if indexed else []
        del indexed
        on_disk = {_base(rel.partition("/")[2]): rel for rel in fresh}
        known = {_base(Path(r[2]).name): r for r in unmatched}
        gone = [r for base, r in known.items() if base not in on_disk]
        self.index.delete_seqs([r[0] for r in gone])
        for r in gone:
            self.events.publish("delete", {"ID": r[1]})
        n, changed = 0, bool(gone)
        for base, rel in on_disk.items():
            row = known.get(base)
            if row is not None:  # renamed (new/ → cur/, flags changed): follow the file and its S flag
                self.index.set_file(row[0], rel)
                read = "S" in _flags(rel)
                if read != bool(row[3]):
                    self.index.set_read([row[0]], read)
                    self.events.publish("update", {"ID": row[1], "Read": read})
                    changed = True
                continue
            try:
                self._index_existing(self.maildir / rel)
                n += 1
            except Exception as e:  # noqa: BLE001 — one file must never stop a start, a re-index or a scan
                log.event("capture.index_failed", level="error", file=rel, error=repr(e)[:300])
        self._count = self.index.count()[0]
        self.backfill_headers()
        if n or gone:
            self.events.publish("prune", None)  # the list changed under the clients: they reload it
        if (n or changed) and self.events.active:
            self.events.publish("stats", self.stats())
        return n

    def backfill_headers(self, limit: int = 2000) -> int:
        """Fills ``headers`` (``header:`` searches) for up to ``limit`` rows indexed before the column existed
        (migration 0063), from their files' header sections; each scan takes the next ones. Returns how many."""
        rows = self.index.select("m.headers IS NULL", (), limit=limit, columns="m.seq, m.file")
        done: list[tuple[int, list[list[str]]]] = []
        for r in rows:
            try:
                with open(self.maildir / r["file"], "rb") as f:
                    head = strip_trace(f.read(4 * HEAD_READ))
            except OSError:  # gone meanwhile: the next scan forgets the row
                continue
            done.append((r["seq"], P.header_pairs(P.field_index(head))))
        if done:
            self.index.set_headers(done)
        return len(done)

    def _index_existing(self, path: Path) -> None:
        data = path.read_bytes()
        cenv = read_envelope(data[:HEAD_READ])
        read = "S" in _flags(path.name)
        if cenv is not None:
            try:
                self._index_file(path, strip_trace(data), cenv, read=read)
                return
            except sqlite3.IntegrityError:
                row = self.index.by_id(cenv.id)
                if row is not None and _base(Path(row["file"]).name) == _base(path.name):
                    return  # the same file, indexed meanwhile by the writer thread (a message just received)
                # a copy of an indexed file: it becomes a message of its own
                cenv.id = new_id()
                self._adopt(path, strip_trace(data), cenv, read)
                return
        self._adopt(path, data, None, read)

    def _adopt(self, path: Path, body: bytes, cenv: CapturedEnvelope | None, read: bool) -> None:
        """Gives a foreign file an envelope and ID (from its headers), rewriting it atomically in place."""
        if cenv is None:
            msg = message_from_bytes(body, headersonly=True)  # the header section is all it needs
            rp = P.header_text(msg, "Return-Path").strip("<> ")
            frm = P.addresses(msg, "From")
            rcpts = [a["Address"] for a in P.addresses(msg, "To") + P.addresses(msg, "Cc")]
            cenv = CapturedEnvelope(received=path.stat().st_mtime, mail_from=rp or (frm[0]["Address"] if frm else ""),
                                    rcpts=rcpts, listener="adopted")
        date = email.utils.formatdate(cenv.received, localtime=False)
        received = f"Received: by {self.hostname} (courrier) id {cenv.id}; {date}\n"
        flags = _flags(path.name)
        sub = path.parent.name
        new = maildir.write_new(self.maildir, [self._trace(cenv, received), body], subdir=sub,
                                info=flags, mtime=cenv.received)
        os.unlink(path)
        self._index_file(new, body, cenv, read=read)
