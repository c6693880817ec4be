"""The queue's state in SQLite (``courrier.db``, migration 0010_queue.sql): what is left to do, and what was done.

``SQLiteQueueStore`` is the implementation of ``queue/api.py:QueueStore`` that the runner and ``courrier queue`` use.

The spool file holds the message; this holds its schedule (attempts, next attempt, last error), each recipient's
status, and the delivery log (one row per attempt, kept after the message is gone). The server and the
``courrier queue`` command share it; SQLite's WAL mode and busy timeout make that safe. Blocking: the runner calls it
from one dedicated thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from courrier import db
from courrier.delivery.outcome import Outcome
from courrier.queue.api import LogRow, QueueRow


class SQLiteQueueStore:
    """``api.QueueStore`` over the queue tables of ``courrier.db``; thread-safe (one connection per thread)."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._local = threading.local()
        db.connect(db_path).close()  # create + migrate once

    def _c(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = db.connect(self._path)
        return c

    # ------------------------------------------------------------------ writes

    def add(self, qid: str, sender: str, created: float, size: int, rcpts: list[str],
            next_attempt: float | None = None) -> bool:
        """Registers a spooled message; False when it was already known (re-adoption after a crash)."""
        with db.transaction(self._c()) as c:
            if c.execute("SELECT 1 FROM queue WHERE qid=?", (qid,)).fetchone():
                return False
            c.execute("INSERT INTO queue (qid, sender, created, size, next_attempt) VALUES (?,?,?,?,?)",
                      (qid, sender, created, size, next_attempt if next_attempt is not None else time.time()))
            c.executemany("INSERT INTO queue_rcpt (qid, idx, address) VALUES (?,?,?)",
                          [(qid, i, a) for i, a in enumerate(rcpts)])
            return True

    def record(self, qid: str, results: dict[int, Outcome], *, next_attempt: float | None,
               last_error: str | None, count_attempt: bool = True,
               log_rows: Sequence[tuple[list[str], Outcome, str]] = (), delay_notified: bool = False) -> None:
        """Stores the outcome of one pass over a message in one transaction: the attempts' delivery-log rows, each
        recipient's new status, and the schedule."""
        with db.transaction(self._c()) as c:
            self._record(c, qid, results, next_attempt=next_attempt, last_error=last_error,
                         count_attempt=count_attempt, log_rows=log_rows, delay_notified=delay_notified)

    def _record(self, c: sqlite3.Connection, qid: str, results: dict[int, Outcome], *, next_attempt: float | None,
                last_error: str | None, count_attempt: bool = True,
                log_rows: Sequence[tuple[list[str], Outcome, str]] = (), delay_notified: bool = False) -> None:
        for rcpts, o, result in log_rows:
            self._log(c, qid, rcpts, o, result)
        if delay_notified:
            c.execute("UPDATE queue SET delay_notified=1 WHERE qid=?", (qid,))
        for idx, o in results.items():
            status = "sent" if o.ok else ("failed" if o.permanent else "pending")
            c.execute("UPDATE queue_rcpt SET status=?, code=?, enhanced=?, text=? WHERE qid=? AND idx=?",
                      (status, o.code, o.enhanced, o.text[:1000], qid, idx))
        if next_attempt is not None:
            c.execute("UPDATE queue SET attempts=attempts+?, next_attempt=?, last_error=COALESCE(?, last_error) "
                      "WHERE qid=?", (1 if count_attempt else 0, next_attempt, last_error, qid))

    def record_many(self, passes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Several passes' ``record(qid, **kwargs)`` in one transaction (the runner's batch of completions)."""
        with db.transaction(self._c()) as c:
            for qid, kw in passes:
                self._record(c, qid, **kw)

    def log(self, qid: str, recipients: list[str], o: Outcome, result: str) -> None:
        self._log(self._c(), qid, recipients, o, result)

    @staticmethod
    def _log(c: sqlite3.Connection, qid: str, recipients: list[str], o: Outcome, result: str) -> None:
        c.execute(
            "INSERT INTO delivery_log (qid, time, recipients, host, address, result, code, enhanced, text, tls, "
            "tls_policy) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (qid, time.time(), ",".join(recipients), o.host, o.address, result, o.code, o.enhanced,
             o.text[:1000], o.tls, o.tls_policy))

    def set_delay_notified(self, qid: str) -> None:
        self._c().execute("UPDATE queue SET delay_notified=1 WHERE qid=?", (qid,))

    def remove(self, qid: str) -> None:
        self._c().execute("DELETE FROM queue WHERE qid=?", (qid,))

    def remove_many(self, qids: Sequence[str]) -> None:
        with db.transaction(self._c()) as c:
            c.executemany("DELETE FROM queue WHERE qid=?", [(q,) for q in qids])

    def retry_now(self, qid: str | None = None) -> int:
        """Makes one message (or every message: ``flush``) due now; returns how many."""
        now = time.time()
        if qid is None:
            return self._c().execute("UPDATE queue SET next_attempt=?", (now,)).rowcount
        return self._c().execute("UPDATE queue SET next_attempt=? WHERE qid=?", (now, qid)).rowcount

    # ------------------------------------------------------------------ reads

    def get(self, qid: str) -> QueueRow | None:
        c = self._c()
        r = c.execute("SELECT * FROM queue WHERE qid=?", (qid,)).fetchone()
        if r is None:
            return None
        rc = tuple((x["idx"], x["address"], x["status"]) for x in
                   c.execute("SELECT idx, address, status FROM queue_rcpt WHERE qid=? ORDER BY idx", (qid,)))
        return QueueRow(r["qid"], r["sender"], r["created"], r["size"], r["attempts"], r["next_attempt"],
                        r["last_error"], bool(r["delay_notified"]), rc)

    def get_many(self, qids: Sequence[str]) -> dict[str, QueueRow]:
        """The rows of those of ``qids`` still queued (two queries, whatever their number)."""
        if not qids:
            return {}
        c = self._c()
        marks = ",".join("?" * len(qids))
        rcpts: dict[str, list[tuple[int, str, str]]] = {}
        for x in c.execute(f"SELECT qid, idx, address, status FROM queue_rcpt WHERE qid IN ({marks}) "
                           "ORDER BY qid, idx", list(qids)):
            rcpts.setdefault(x[0], []).append((x[1], x[2], x[3]))
        return {r["qid"]: QueueRow(r["qid"], r["sender"], r["created"], r["size"], r["attempts"], r["next_attempt"],
                                   r["last_error"], bool(r["delay_notified"]), tuple(rcpts.get(r["qid"], ())))
                for r in c.execute(f"SELECT * FROM queue WHERE qid IN ({marks})", list(qids))}

    def all(self) -> list[QueueRow]:
        qids = [r[0] for r in self._c().execute("SELECT qid FROM queue ORDER BY created, qid")]
        return [row for q in qids if (row := self.get(q)) is not None]

    def qids(self) -> set[str]:
        return {r[0] for r in self._c().execute("SELECT qid FROM queue")}

    def due(self, now: float, limit: int, exclude: set[str]) -> tuple[list[str], float | None]:
        """Up to ``limit`` due queue ids (oldest schedule first) and the next future due time."""
        out = []
        # Messages in flight still look due; they are the oldest due rows, so limit+len(exclude) rows suffice.
        for (qid,) in self._c().execute("SELECT qid FROM queue WHERE next_attempt <= ? ORDER BY next_attempt "
                                         "LIMIT ?", (now, limit + len(exclude))):
            if qid in exclude:
                continue
            out.append(qid)
            if len(out) >= limit:
                break
        nxt = self._c().execute("SELECT MIN(next_attempt) FROM queue WHERE next_attempt > ?", (now,)).fetchone()[0]
        return out, nxt

    def history(self, qid: str) -> list[LogRow]:
        return [LogRow(r["time"], r["recipients"], r["host"], r["address"], r["result"], r["code"], r["enhanced"],
                       r["text"], r["tls"], r["tls_policy"])
                for r in self._c().execute("SELECT * FROM delivery_log WHERE qid=? ORDER BY id", (qid,))]

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None
