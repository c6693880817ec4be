"""What the web layer, the capture role and the composition root may ask of a capture store: two Protocols.

Two stores keep these promises: ``store.CaptureStore`` (Maildir + SQLite/FTS5, the default) and
``courrier.cluster.capture_store.PgCaptureStore`` (``[store] backend = "postgresql"``: messages, tags, read state
and the text-search index in PostgreSQL, shared by every node). ``tests/cluster/test_capture_pg.py`` runs the same
cases against both.

``CaptureQueries`` is the store's query side, for what the web layer builds itself (a mailbox's scope, paging by
time, tag editing, counts): SQL conditions over the messages table aliased ``m``, in the store's own dialect, with
``?`` placeholders in both. Only the conditions the queries object made (``compile``, ``mailbox_where``,
``older_than``) and the plain ``m.id = ?`` / ``m.auth IS NULL`` are passed back to it; columns named in ``select`` are
``m.id``, ``m.read``, ``m.seq``, ``m.file``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from courrier import __version__, db
from courrier.capture.index import CaptureIndex, mailbox_where
from courrier.capture.search import FREE_TEXT_SCAN, compile_query

if TYPE_CHECKING:
    from email.message import EmailMessage

    from courrier.capture.chaos import Chaos
    from courrier.capture.envelope import CapturedEnvelope
    from courrier.capture.events import EventHub
    from courrier.capture.records import Message, Page, Summary
    from courrier.config import CaptureConfig
    from courrier.mail.envelope import Envelope, Hop
    from courrier.mail.message import ReceivedMessage


class CaptureQueries(Protocol):
    # True when every change is published on this process's EventHub before anyone can read it (one process owns
    # the store), so that the totals may be kept from ``stats`` events; False when other nodes change it too.
    counts_follow_events: bool

    def select(self, where: str = "1", params: Sequence[Any] = (), *, start: int = 0, limit: int = -1,
               columns: str = "m.*", order: str = ...) -> Sequence[Mapping[str, Any]]: ...

    def count(self, where: str = "1", params: Sequence[Any] = ()) -> tuple[int, int]: ...

    def compile(self, query: str) -> tuple[str, list[object]]:
        """Mailpit's search syntax → a condition (QueryError, a ValueError, for a value it refuses)."""
        ...

    def mailbox_where(self, name: str) -> tuple[str, list[object]]: ...

    def older_than(self, millis: int) -> tuple[str, list[object]]:
        """Messages created strictly before ``millis`` (Mailpit's ``?before=``, at Created's precision)."""
        ...

    def scans_all(self, where: str) -> bool:
        """Whether the condition reads every message (free text), so that counting then paging would run it twice."""
        ...

    def all_tags(self) -> list[str]: ...

    def tag_counts(self) -> dict[str, int]: ...

    def set_tags(self, ids: list[str], tags: list[str]) -> None: ...

    def rename_tag(self, old: str, new: str) -> None: ...

    def delete_tag(self, tag: str) -> None: ...

    def set_auth(self, msg_id: str, terms: str) -> None: ...

    def mailboxes(self) -> list[tuple[str, int, int]]: ...

    def db_path(self) -> Path | None: ...


class CaptureBackend(Protocol):
    """The capture store as the web layer (``web/store.py``), the capture role and ``app.py`` use it; the method
    contracts are ``store.CaptureStore``'s (its module docstring)."""

    cfg: CaptureConfig
    events: EventHub
    chaos: Chaos
    queries: CaptureQueries
    paused: bool
    ignored: int
    rejected: int

    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    def close(self) -> None: ...
    def set_paused(self, paused: bool) -> None: ...
    async def add(self, env: Envelope, hop: Hop, msg: ReceivedMessage) -> str: ...
    def add_bytes(self, data: bytes, *, mail_from: str, rcpts: list[str], client: str = ..., user: str | None = ...,
                  helo: str | None = ..., listener: str = ..., tags: list[str] | None = ...) -> str: ...
    def list(self, start: int = 0, limit: int = 50) -> Page: ...
    def search(self, query: str, start: int = 0, limit: int = 50) -> Page: ...
    def summary(self, id_: str) -> Summary | None: ...
    def get(self, id_: str) -> Message | None: ...
    def latest_id(self) -> str | None: ...
    def parse_errors(self, ids: list[str]) -> dict[str, str]: ...
    def headers(self, id_: str) -> dict[str, list[str]] | None: ...
    def raw(self, id_: str, trace: bool = False) -> bytes | None: ...
    def part(self, id_: str, part_id: str) -> tuple[str, str, bytes] | None: ...
    def message(self, id_: str) -> EmailMessage | None: ...
    def envelope(self, id_: str) -> CapturedEnvelope | None: ...
    def tags(self) -> list[str]: ...
    def counts(self) -> tuple[int, int]: ...
    def stats(self) -> dict[str, Any]: ...
    def set_read(self, ids: list[str] | None, read: bool) -> int: ...
    def delete(self, ids: list[str] | None) -> int: ...
    def delete_search(self, query: str) -> int: ...
    def prune(self, wait: bool = True) -> int: ...


class SQLiteQueries:
    """``CaptureQueries`` over the local store's SQLite index (``index.py``, ``search.py``)."""

    counts_follow_events = True

    def __init__(self, index: CaptureIndex) -> None:
        self.index = index
        self.select = index.select
        self.count = index.count
        self.all_tags = index.all_tags
        self.set_auth = index.set_auth
        self.mailboxes = index.mailboxes

    compile = staticmethod(compile_query)
    mailbox_where = staticmethod(mailbox_where)

    @staticmethod
    def older_than(millis: int) -> tuple[str, list[object]]:
        return "CAST(m.created * 1000 AS INTEGER) < ?", [millis]

    @staticmethod
    def scans_all(where: str) -> bool:
        return FREE_TEXT_SCAN in where

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.index.lock, db.transaction(self.index.conn) as c:
            yield c

    def tag_counts(self) -> dict[str, int]:
        with self._tx() as c:
            return {r[0]: r[1] for r in c.execute(
                "SELECT tag, count(*) FROM capture_tags GROUP BY tag ORDER BY tag COLLATE NOCASE")}

    def set_tags(self, ids: list[str], tags: list[str]) -> None:
        with self._tx() as c:
            for i in ids:
                row = c.execute("SELECT seq FROM capture_messages WHERE id = ?", (i,)).fetchone()
                if row is None:
                    continue
                c.execute("DELETE FROM capture_tags WHERE seq = ?", (row[0],))
                c.executemany("INSERT OR IGNORE INTO capture_tags (seq, tag) VALUES (?, ?)",
                              [(row[0], t) for t in tags])

    def rename_tag(self, old: str, new: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO capture_tags (seq, tag) SELECT seq, ? FROM capture_tags WHERE tag = ?",
                      (new, old))
            if new != old:
                c.execute("DELETE FROM capture_tags WHERE tag = ?", (old,))

    def delete_tag(self, tag: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM capture_tags WHERE tag = ?", (tag,))

    def db_path(self) -> Path | None:
        try:
            row = self.index.conn.execute("PRAGMA database_list").fetchone()
            return Path(row[2]) if row and row[2] else None
        except Exception:
            return None


class TotalsFromQueries:
    """``tags``, ``counts`` and ``stats`` of a capture store (``CaptureBackend``), read through its ``queries`` —
    the same for both stores."""

    queries: CaptureQueries

    def tags(self) -> list[str]:
        return self.queries.all_tags()

    def counts(self) -> tuple[int, int]:
        return self.queries.count()

    def stats(self) -> dict[str, Any]:
        total, unread = self.counts()
        return {"Total": total, "Unread": unread, "Version": __version__}
