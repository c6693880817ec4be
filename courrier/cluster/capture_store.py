"""PgCaptureStore — capture mode on PostgreSQL (``mode = "capture"`` with ``[store] backend = "postgresql"``).

The same promises as the local ``capture.store.CaptureStore`` (the ``capture/api.py`` protocols: the web layer, the
capture role and ``app.py`` cannot tell them apart), with every captured message, its summary row, tags, read state
and text-search index in the tables of migration ``0006_capture.sql``, shared by every node on the database:

- ``add`` writes the message row, its body, its tags and its search columns, applies ``max_messages`` and sends the
  notification in ONE transaction; the capture role's 250 is sent after the commit (``synchronous_commit = on``,
  ``pg.connect``). Retention runs under a transaction-level advisory lock, so two nodes capturing at once never
  leave more than ``max_messages`` (each sees the other's committed row before it counts).
- Bodies: one ``bytea`` per message (``capture_bodies``), not the mail store's 1 MiB chunks. The capture store reads
  and parses a message whole whatever its storage (the summary row at arrival, ``get``/``part`` later — the local
  store reads the whole file too) and the SMTP listener bounds the size ([limits] max_message_size, far below the
  1 GiB of a bytea), so chunks would add round trips and bound nothing; TOAST already keeps a large value compressed
  and out of the row.
- Search: ``capture_search.py`` compiles Mailpit's grammar to PostgreSQL (text search with a GIN index beside a
  substring match), so both stores answer the same messages.
- Events across nodes: each change sends ``NOTIFY courrier_capture`` (JSON: the sending instance, the change, the
  IDs) in its transaction. A thread of each node ``LISTEN``s on a connection of its own and republishes the other
  nodes' changes on the local ``EventHub`` (``new`` with the summary read back, ``update``, ``delete``, ``truncate``,
  ``prune``, then ``stats``) — the web list and ``/api/events`` see them within milliseconds of the commit. When that
  connection breaks, the thread reconnects and publishes ``prune`` (clients reload their list: what was said
  meanwhile is lost).

Every method but ``add``/``start``/``aclose`` blocks (one connection per thread, ``pg.Pool``), as the local store's.
A database outage raises ``pg.Unavailable`` (an OSError): the SMTP engine answers 451, the API 500 — nothing acked
is lost.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.rows import dict_row
from psycopg.types.string import StrDumperUnknown

from courrier import log
from courrier.capture import parse as P
from courrier.capture.api import TotalsFromQueries
from courrier.capture.arrival import Rules, api_arrival, ensure_message_id, message_id_of
from courrier.capture.chaos import Chaos
from courrier.capture.envelope import CapturedEnvelope, read_envelope
from courrier.capture.events import EventHub
from courrier.capture.index import MAX_MAILBOXES
from courrier.capture.records import Message, Page, Summary, message_of
from courrier.capture.store import MAX_ERROR_IDS, CaptureStore, build_row, envelope_of, trace_fields
from courrier.cluster import capture_search as S
from courrier.cluster.pg import Pool, Unavailable, connect, migrate, outage_seen
from courrier.config import CaptureConfig, Config
from courrier.lifecycle import StartupError
from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage

CHANNEL = "courrier_capture"
RETENTION_LOCK = 0x63617074  # pg_advisory_xact_lock key of max_messages ("capt")
MAX_NOTIFY_IDS = 200  # IDs per notification (a payload stays under PostgreSQL's 8000 bytes)
MAX_EVENT_IDS = 1000  # a change of more messages is told to the other nodes as "prune" (reload the list)
_THREADS = 8

_INSERT = (
    "INSERT INTO capture_messages (id, created, date, message_id, return_path, from_json, to_json, cc_json, bcc_json, "
    "reply_to_json, subject, size, attachments, inline, read, username, snippet, envelope, headers, trace, "
    "search_text, search_tsv) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::tsvector) "
    "RETURNING seq")


def _j(v: Any) -> str:  # the local index's JSON text (capture/index.py), so that from:/to: LIKE the same text
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _jb(v: Any) -> str:
    """JSON text for a jsonb column, which refuses ``\\u0000`` (a NUL in a hostile header: U+FFFD instead)."""
    return _j(v).replace("\\u0000", "\\ufffd")


class _NulSafeStr(StrDumperUnknown):
    """PostgreSQL text holds no NUL character; a hostile message (or a request) may. Every string parameter of this
    store's connections has its NULs replaced by U+FFFD — stored and searched alike — instead of failing (500)."""

    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


class _Pool(Pool):
    """The cluster's pool, its connections given the NUL-safe string dumper."""

    def setup(self, c: psycopg.Connection) -> None:
        c.adapters.register_dumper(str, _NulSafeStr)


def _sql(where: str) -> str:
    """A condition of ``capture/api.py``'s form (``?`` placeholders; "1" for all, as the SQLite side writes it) as
    psycopg's. No condition made here or in capture_search.py holds a literal ``?`` or ``%``."""
    if "%" in where:
        raise ValueError("a capture condition may not hold a literal %")
    if where == "1":
        return "true"
    return where.replace("(1)", "(true)").replace("?", "%s")


class PgCaptureQueries:
    """``capture/api.py``'s ``CaptureQueries`` over the PostgreSQL tables."""

    counts_follow_events = False  # other nodes write too: totals are counted for each page (an index-only count)

    def __init__(self, pool: Pool, tell: Callable[[psycopg.Connection, dict[str, Any]], None]) -> None:
        self.pool = pool
        self._tell = tell
        self._trgm: bool | None = None

    def _substring_index(self) -> bool:
        if self._trgm is None:
            with self.pool.conn() as c:
                self._trgm = c.execute("SELECT to_regclass('capture_messages_substring') IS NOT NULL").fetchone()[0]
        return bool(self._trgm)

    compile = staticmethod(S.compile_query)
    mailbox_where = staticmethod(S.mailbox_where)

    @staticmethod
    def older_than(millis: int) -> tuple[str, list[object]]:
        return "floor(m.created * 1000) < ?", [millis]

    @staticmethod
    def scans_all(where: str) -> bool:
        return S.FREE_TEXT_SCAN in where

    @contextmanager
    def _reading(self, where: str) -> Iterator[psycopg.Connection]:
        """A connection for one query. Free text: in a transaction that steers the planner off a sequential scan —
        it prices ``ILIKE`` on a long text like an integer comparison and reads every row (58 ms for 2,000 messages)
        where the two indexes answer in 2 ms. Only with the trigram index (pg_trgm, migration 0006): without it the
        ILIKE half has no index and a sequential scan is the best plan."""
        if not self.scans_all(where) or not self._substring_index():
            with self.pool.conn() as c:
                yield c
            return
        with self.pool.tx() as c:
            c.execute("SET LOCAL enable_seqscan = off")
            yield c

    def select(self, where: str = "1", params: Sequence[Any] = (), *, start: int = 0, limit: int = -1,
               columns: str = "m.*", order: str = "m.created DESC, m.seq DESC") -> list[dict[str, Any]]:
        with self._reading(where) as c:
            cur = c.cursor(row_factory=dict_row)
            return cur.execute(f"SELECT {columns} FROM capture_messages m WHERE {_sql(where)} ORDER BY {order} "
                               "LIMIT %s OFFSET %s",
                               (*params, None if limit < 0 else limit, max(0, start))).fetchall()

    def count(self, where: str = "1", params: Sequence[Any] = ()) -> tuple[int, int]:
        with self._reading(where) as c:
            row = c.execute(f"SELECT count(*), count(*) FILTER (WHERE NOT m.read) FROM capture_messages m "
                            f"WHERE {_sql(where)}", tuple(params)).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def all_tags(self) -> list[str]:
        with self.pool.conn() as c:
            return [r[0] for r in c.execute(
                "SELECT tag FROM (SELECT DISTINCT tag FROM capture_tags) t ORDER BY lower(tag), tag")]

    def tags_of(self, seqs: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {s: [] for s in seqs}
        if seqs:
            with self.pool.conn() as c:
                for seq, tag in c.execute('SELECT seq, tag FROM capture_tags WHERE seq = ANY(%s) '
                                          'ORDER BY tag COLLATE "C"', (list(seqs),)):
                    out[seq].append(tag)
        return out

    def tag_counts(self) -> dict[str, int]:
        with self.pool.conn() as c:
            return {r[0]: int(r[1]) for r in c.execute(
                "SELECT tag, count(*) FROM capture_tags GROUP BY tag ORDER BY lower(tag), tag")}

    def set_tags(self, ids: list[str], tags: list[str]) -> None:
        with self.pool.tx() as c:
            rows = c.execute("SELECT seq, id FROM capture_messages WHERE id = ANY(%s) ORDER BY seq FOR UPDATE",
                             (list(ids),)).fetchall()
            seqs = [r[0] for r in rows]
            c.execute("DELETE FROM capture_tags WHERE seq = ANY(%s)", (seqs,))
            if tags:
                c.execute("INSERT INTO capture_tags (seq, tag) SELECT s, t FROM unnest(%s::bigint[]) s, "
                          "unnest(%s::text[]) t ON CONFLICT DO NOTHING", (seqs, list(dict.fromkeys(tags))))
            self._tell(c, {"t": "tags", "ids": [r[1] for r in rows], "tags": list(tags)})

    def rename_tag(self, old: str, new: str) -> None:
        with self.pool.tx() as c:
            c.execute("INSERT INTO capture_tags (seq, tag) SELECT seq, %s FROM capture_tags WHERE tag = %s "
                      "ON CONFLICT DO NOTHING", (new, old))
            if new != old:
                c.execute("DELETE FROM capture_tags WHERE tag = %s", (old,))
            self._tell(c, {"t": "prune"})

    def delete_tag(self, tag: str) -> None:
        with self.pool.tx() as c:
            c.execute("DELETE FROM capture_tags WHERE tag = %s", (tag,))
            self._tell(c, {"t": "prune"})

    def set_auth(self, msg_id: str, terms: str) -> None:
        with self.pool.conn() as c:
            c.execute("UPDATE capture_messages SET auth = %s WHERE id = %s", (terms, msg_id))

    def mailboxes(self) -> list[tuple[str, int, int]]:
        with self.pool.conn() as c:
            rows = c.execute(
                "SELECT name, count(*), count(*) FILTER (WHERE NOT read) FROM ("
                " SELECT m.seq, m.read, lower(r) AS name FROM capture_messages m, "
                "  jsonb_array_elements_text(m.envelope->'rcpts') r WHERE r <> ''"
                " UNION SELECT m.seq, m.read, lower(m.username) FROM capture_messages m WHERE m.username <> ''"
                ") x GROUP BY name ORDER BY count(*) DESC, name LIMIT %s", (MAX_MAILBOXES,)).fetchall()
        return sorted((str(r[0]), int(r[1]), int(r[2])) for r in rows)

    def db_path(self) -> Path | None:
        return None


class PgCaptureStore(TotalsFromQueries):
    def __init__(self, dsn: str, cfg: CaptureConfig, *, hostname: str = "localhost", timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.cfg = cfg
        self.hostname = hostname
        self.timeout = timeout
        self.pool = _Pool(dsn, timeout)
        self.token = secrets.token_hex(8)  # this instance, in its notifications (two nodes may share a name)
        self.queries = PgCaptureQueries(self.pool, self._tell)
        self.events = EventHub()
        self.executor = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="courrier-pgcapture")
        self._remote = ThreadPoolExecutor(max_workers=1, thread_name_prefix="courrier-pgcapture-events")
        self.paused = False
        self.chaos = Chaos(cfg.chaos)
        # [capture] tag_rules compiled for PostgreSQL (run in ``_store``); build_row only adds the username tag
        self.rules = [(*S.compile_query(q), tags) for q, tags in cfg.tag_rules]
        self._row_rules = Rules(tag_username=cfg.tag_username)
        self.ignored = 0
        self.rejected = 0
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.events.bind(loop)
        try:
            conn = await loop.run_in_executor(self.executor, self._listen_conn)
        except Unavailable as e:
            raise StartupError(f"[store] dsn: {e.strerror}") from None
        self._listener = threading.Thread(target=self._listen, args=(conn,), name="courrier-pgcapture-listen",
                                          daemon=True)
        self._listener.start()
        await loop.run_in_executor(self.executor, self.prune)
        self._task = loop.create_task(self._housekeeping())

    async def _housekeeping(self) -> None:
        """``max_age``: every few seconds (the local store's period), on whichever node runs it first."""
        if not self.cfg.max_age:
            return
        period = min(10.0, max(1.0, self.cfg.max_age / 10))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            try:
                await loop.run_in_executor(self.executor, self.prune)
            except Exception as e:
                log.event("capture.housekeeping_failed", level="error", error=repr(e))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._remote.shutdown(wait=True)
        self.executor.shutdown(wait=True)
        self.pool.close()

    def set_paused(self, paused: bool) -> None:
        self.paused = bool(paused)
        log.event("capture.paused" if paused else "capture.resumed")

    # ------------------------------------------------------------------ notifications between nodes

    def _tell(self, c: psycopg.Connection, change: dict[str, Any]) -> None:
        """Sends ``change`` to the other nodes in the transaction of ``c`` (delivered at its commit)."""
        ids = change.get("ids")
        if ids is not None and len(ids) > MAX_EVENT_IDS:
            change = {"t": "prune"}
            ids = None
        chunks = [change] if ids is None else [
            {**change, "ids": ids[i:i + MAX_NOTIFY_IDS]} for i in range(0, max(1, len(ids)), MAX_NOTIFY_IDS)]
        for ch in chunks:
            c.execute("SELECT pg_notify(%s, %s)", (CHANNEL, _j({"n": self.token, **ch})))

    def _listen_conn(self) -> psycopg.Connection:
        c = connect(self.dsn, self.timeout)
        try:
            c.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as e:
            c.close()
            raise Unavailable(e) from None
        return c

    def _listen(self, conn: psycopg.Connection | None) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = self._listen_conn()
                    log.event("capture.listen_reconnected")
                    self._remote.submit(self._republish, [{"t": "prune"}])
                    backoff = 0.2
                batch = []
                for n in conn.notifies(timeout=0.5, stop_after=100):
                    try:
                        change = json.loads(n.payload)
                    except ValueError:
                        continue
                    if isinstance(change, dict) and change.get("n") != self.token:
                        batch.append(change)
                if batch and not self._stop.is_set():
                    self._remote.submit(self._republish, batch)
            except (OSError, psycopg.Error) as e:
                if self._stop.is_set():
                    break
                outage_seen()
                log.event("capture.listen_failed", level="warn", error=str(e).strip()[:200])
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - closing what may be gone
                        pass
                conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def _republish(self, changes: list[dict[str, Any]]) -> None:
        """Another node's changes, as this node's events (in the events thread, in order): then one ``stats``."""
        try:
            if not self.events.active:
                return
            for ch in changes:
                t, ids = ch.get("t"), [i for i in ch.get("ids") or [] if isinstance(i, str)]
                if t == "new":
                    for s in self._summaries_by_id(ids):
                        self.events.publish("new", s)
                    if ch.get("pruned"):
                        self.events.publish("prune", None)
                elif t == "read":
                    for i in ids:
                        self.events.publish("update", {"ID": i, "Read": bool(ch.get("read"))})
                elif t == "tags":
                    for i in ids:
                        self.events.publish("update", {"ID": i, "Tags": list(ch.get("tags") or [])})
                elif t == "delete":
                    for i in ids:
                        self.events.publish("delete", {"ID": i})
                elif t in ("truncate", "prune"):
                    self.events.publish(t, None)
            self.events.publish("stats", self.stats())
        except Exception as e:  # the database went away meanwhile: the next change tells again
            log.event("capture.events_failed", level="error", error=repr(e)[:300])

    # ------------------------------------------------------------------ receiving

    async def add(self, env: Envelope, hop: Hop, msg: ReceivedMessage) -> str:
        """Stores a message from the capture role; returns its ID once the transaction has committed."""
        data = msg.read_all()
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._add_sync, env, hop, data)

    def _add_sync(self, env: Envelope, hop: Hop, data: bytes) -> str:
        if self.cfg.ignore_duplicate_ids:
            dup = self.duplicate_of(data)
            if dup is not None:
                return dup
        cenv, received = envelope_of(env, hop)
        self._store(ensure_message_id(data.replace(b"\r\n", b"\n"), cenv.id), cenv, received)
        return cenv.id

    def duplicate_of(self, data: bytes) -> str | None:
        mid = message_id_of(data.replace(b"\r\n", b"\n"))
        if not mid:
            return None
        with self.pool.conn() as c:
            row = c.execute("SELECT id FROM capture_messages WHERE message_id = %s LIMIT 1", (mid,)).fetchone()
        if row is None:
            return None
        self.ignored += 1
        log.event("capture.duplicate_ignored", message_id=mid[:200], id=row[0])
        return str(row[0])

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
        self._store(body, cenv, received)
        log.event("capture.stored", id=cenv.id, listener=listener, size=len(data), rcpts=len(cenv.rcpts))
        return cenv.id

    def _store(self, body: bytes, cenv: CapturedEnvelope, received: str) -> None:
        """One transaction: the row, the body, the tags (arrival rules included), retention, the notification."""
        row = build_row(Path("pg") / cenv.id, body, cenv, read=False, rules=self._row_rules)
        tags = list(row.tags)
        with self.pool.tx() as c:
            (seq,) = c.execute(_INSERT, (
                row.id, row.created, row.date, row.message_id, row.return_path, _j(row.from_), _j(row.to),
                _j(row.cc), _j(row.bcc), _j(row.reply_to), row.subject, row.size, row.attachments, row.inline,
                False, row.username, row.snippet, _jb(row.envelope), _jb(row.headers),
                trace_fields(cenv, received), S.search_text(row.subject, row.search_addresses, row.search_body),
                S.tsvector(row.subject, row.search_addresses, row.search_body))).fetchone()
            c.execute("INSERT INTO capture_bodies (seq, data) VALUES (%s, %s)", (seq, body))
            add_tags = "INSERT INTO capture_tags (seq, tag) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING"
            if tags:
                c.execute(add_tags, (seq, tags))
            for where, params, extra in self.rules:  # Mailpit's tag filters: the rule's search on this message
                if c.execute(f"SELECT 1 FROM capture_messages m WHERE m.seq = %s AND ({_sql(where)})",
                             (seq, *params)).fetchone():
                    new = [t for t in extra if t not in tags]
                    if new:
                        c.execute(add_tags, (seq, new))
                        tags += new
            pruned = self._trim(c) if self.cfg.max_messages else []
            self._tell(c, {"t": "new", "ids": [row.id], "pruned": len(pruned)})
        row.tags = tags
        if pruned:
            log.event("capture.pruned", count=len(pruned))
        if self.events.active:
            self.events.publish("new", CaptureStore._summary_of(row.__dict__, sorted(tags)))
            if pruned:
                self.events.publish("prune", None)
            self.events.publish("stats", self.stats())

    def _trim(self, c: psycopg.Connection) -> list[str]:
        """``max_messages`` inside the caller's transaction, one node at a time: the oldest beyond it go."""
        c.execute("SELECT pg_advisory_xact_lock(%s)", (RETENTION_LOCK,))
        rows = c.execute("DELETE FROM capture_messages WHERE seq IN (SELECT seq FROM capture_messages "
                         "ORDER BY created DESC, seq DESC OFFSET %s) RETURNING id", (self.cfg.max_messages,)).fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ shaping

    def _summaries(self, rows: Sequence[Mapping[str, Any]]) -> list[Summary]:
        tags = self.queries.tags_of([r["seq"] for r in rows])
        return [CaptureStore._summary_of(r, tags[r["seq"]]) for r in rows]

    _SUMMARY_COLS = ("m.seq, m.id, m.message_id, m.read, m.from_json, m.to_json, m.cc_json, m.bcc_json, "
                     "m.reply_to_json, m.subject, m.created, m.username, m.size, m.attachments, m.snippet, "
                     "m.return_path")

    def _summaries_by_id(self, ids: list[str]) -> list[Summary]:
        if not ids:
            return []
        rows = self.queries.select("m.id = ANY(?)", [ids], columns=self._SUMMARY_COLS)
        return self._summaries(rows)

    def _row(self, id_: str) -> dict[str, Any] | None:
        rows = self.queries.select("m.id = ?", [id_], limit=1, columns=self._SUMMARY_COLS)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ reading

    def _page(self, where: str, params: list[Any], start: int, limit: int) -> Page:
        total, unread = self.counts()
        m_count, m_unread = (total, unread) if where == "true" else self.queries.count(where, params)
        rows = self.queries.select(where, params, start=start, limit=limit if limit > 0 else -1,
                                   columns=self._SUMMARY_COLS)
        return Page(total=total, unread=unread, messages_count=m_count, messages_unread=m_unread,
                    start=max(0, start), tags=self.queries.all_tags(), messages=self._summaries(rows))

    def list(self, start: int = 0, limit: int = 50) -> Page:
        return self._page("true", [], start, limit)

    def search(self, query: str, start: int = 0, limit: int = 50) -> Page:
        where, params = S.compile_query(query)
        return self._page(where, params, start, limit)

    def summary(self, id_: str) -> Summary | None:
        row = self._row(id_)
        return None if row is None else self._summaries([row])[0]

    def parse_errors(self, ids: list[str]) -> dict[str, str]:
        with self.pool.conn() as c:
            rows = c.execute("SELECT id, envelope->>'error' FROM capture_messages WHERE id = ANY(%s) "
                             "AND envelope->>'error' IS NOT NULL", (list(ids[:MAX_ERROR_IDS]),)).fetchall()
        return {r[0]: r[1] for r in rows if r[1]}

    def latest_id(self) -> str | None:
        rows = self.queries.select(limit=1, columns="m.id")
        return rows[0]["id"] if rows else None

    def _stored(self, id_: str) -> tuple[bytes, bytes] | None:
        """(trace fields, body as sent), LF line ends."""
        with self.pool.conn() as c:
            row = c.execute("SELECT m.trace, b.data FROM capture_messages m JOIN capture_bodies b USING (seq) "
                            "WHERE m.id = %s", (id_,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def raw(self, id_: str, trace: bool = False) -> bytes | None:
        got = self._stored(id_)
        if got is None:
            return None
        data = got[0] + got[1] if trace else got[1]
        return data.replace(b"\n", b"\r\n")

    def message(self, id_: str) -> EmailMessage | None:
        got = self._stored(id_)
        return None if got is None else P.parse_bytes(got[1])

    def envelope(self, id_: str) -> CapturedEnvelope | None:
        got = self._stored(id_)
        return None if got is None else read_envelope(got[0])

    def headers(self, id_: str) -> dict[str, list[str]] | None:
        got = self._stored(id_)
        return None if got is None else P.header_fields(got[1])

    def part(self, id_: str, part_id: str) -> tuple[str, str, bytes] | None:
        got = self._stored(id_)
        if got is None:
            return None
        part = P.find_part(P.message_of(got[1]), part_id)
        if part is None:
            return None
        return part.get_content_type(), P.part_filename(part), P.part_bytes(part)

    def get(self, id_: str) -> Message | None:
        row = self._row(id_)
        got = self._stored(id_) if row is not None else None
        if row is None or got is None:
            return None
        msg, p = P.parse(got[1])
        return message_of(self._summaries([row])[0], msg, p, row["return_path"], row["created"])

    # ------------------------------------------------------------------ changing

    def set_read(self, ids: list[str] | None, read: bool) -> int:
        with self.pool.tx() as c:
            if ids is None:
                rows = c.execute("UPDATE capture_messages SET read = %s WHERE read <> %s RETURNING id",
                                 (read, read)).fetchall()
            else:
                rows = c.execute("UPDATE capture_messages SET read = %s WHERE id = ANY(%s) AND read <> %s "
                                 "RETURNING id", (read, list(ids), read)).fetchall()
            changed = [r[0] for r in rows]
            if changed:
                self._tell(c, {"t": "read", "ids": changed, "read": read})
        for i in changed:
            self.events.publish("update", {"ID": i, "Read": read})
        if changed:
            self.events.publish("stats", self.stats())
        return len(changed)

    def _delete_where(self, where: str, params: Iterable[Any], truncate: bool = False) -> list[str]:
        with self.pool.tx() as c:
            rows = c.execute(f"DELETE FROM capture_messages m WHERE {_sql(where)} RETURNING m.id",
                             tuple(params)).fetchall()
            gone = [r[0] for r in rows]
            if truncate:
                self._tell(c, {"t": "truncate"})
            elif gone:
                self._tell(c, {"t": "delete", "ids": gone})
        return gone

    def delete(self, ids: list[str] | None) -> int:
        gone = self._delete_where("true", [], truncate=True) if ids is None else \
            self._delete_where("m.id = ANY(?)", [list(ids)])
        if ids is None:
            self.events.publish("truncate", None)
        else:
            for i in gone:
                self.events.publish("delete", {"ID": i})
        if gone or ids is None:
            self.events.publish("stats", self.stats())
        log.event("capture.deleted", count=len(gone))
        return len(gone)

    def delete_search(self, query: str) -> int:
        where, params = S.compile_query(query)
        gone = self._delete_where(where, params)
        for i in gone:
            self.events.publish("delete", {"ID": i})
        if gone:
            self.events.publish("stats", self.stats())
        log.event("capture.deleted", count=len(gone))
        return len(gone)

    def prune(self, wait: bool = True) -> int:
        """Retention now: older than ``max_age``, then the oldest beyond ``max_messages`` (every node's messages)."""
        gone: list[str] = []
        with self.pool.tx() as c:
            if self.cfg.max_age:
                gone += [r[0] for r in c.execute("DELETE FROM capture_messages WHERE created < %s RETURNING id",
                                                 (time.time() - self.cfg.max_age,)).fetchall()]
            if self.cfg.max_messages:
                gone += self._trim(c)
            if gone:
                self._tell(c, {"t": "prune"})
        if not gone:
            return 0
        log.event("capture.pruned", count=len(gone))
        self.events.publish("prune", None)
        self.events.publish("stats", self.stats())
        return len(gone)


def open_capture_store(cfg: Config) -> PgCaptureStore:
    """The capture store of ``mode = "capture"`` with ``[store] backend = "postgresql"``: the schema brought up to
    date (migrations, under the cluster's advisory lock), then the store. ``Unavailable`` when unreachable."""
    st = cfg.store
    migrate(st.dsn, st.timeout)
    return PgCaptureStore(st.dsn, cfg.capture, hostname=cfg.hostname, timeout=st.timeout)
