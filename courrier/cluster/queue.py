"""The outbound queue in PostgreSQL, worked by every node: ``PgSpool`` (the messages) and ``PgQueueStore``
(``queue/api.py:QueueStore``: schedules, recipients, delivery log), both over the ``queue`` tables.

The runner (``queue/runner.py``) is the local store's, unchanged: it writes a message with ``spool.write`` then
registers it with ``store.add``. Here ``write`` stores the message, its envelope, its schedule and its recipients in
one transaction — the one whose commit the 250 waits for — and ``add`` finds it already known.

Claims: ``due`` takes due messages with ``FOR UPDATE SKIP LOCKED`` (two nodes never pick the same row at the same
time) and gives each a lease, ``lease_owner = node``, ``lease_until = now + [store] lease``. The node renews its
leases while it lives (``renew``, cluster/node.py); ``record`` (the end of a pass) and ``remove`` release them. A
node that dies leaves leases that lapse, and the next ``due`` of any node takes those messages over: relay stays
at-least-once (a node that died after the remote 250 and before ``record`` has the message sent again).

Sendmail drops (``queue/incoming``) stay per node: the runner picks them up from this node's data dir and writes
them here. ``msg/`` is a local folder that stays empty (the runner looks a queue id up there when it adopts a file).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from courrier.cluster.pg import Pool
from courrier.delivery.outcome import Outcome
from courrier.mail.envelope import Envelope
from courrier.queue.api import LogRow, QueueRow
from courrier.queue.spool import CHUNK, Spool, decode, envelope_from_json, envelope_json


class PgSpool:
    """The runner's ``Spool`` with the messages in PostgreSQL (``incoming/`` stays a local folder)."""

    def __init__(self, pool: Pool, root: Path) -> None:
        self.pool = pool
        self.root = root
        self.tmp, self.incoming, self.msg, self.corrupt = (root / n for n in ("tmp", "incoming", "msg", "corrupt"))
        for d in (self.tmp, self.incoming, self.msg, self.corrupt):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, qid: str) -> Path:
        if not qid or "/" in qid or qid.startswith("."):
            raise ValueError(f"bad queue id {qid!r}")
        return self.msg / qid

    def write(self, env: Envelope, parts: Iterable[bytes], *, incoming: bool = False) -> Path:
        """The message, its schedule and its recipients in one committed transaction (the 250 follows)."""
        message = b"".join(parts)
        with self.pool.tx() as c:
            r = c.execute("INSERT INTO queue (qid, sender, created, size, next_attempt, envelope, message) "
                          "VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (qid) DO NOTHING RETURNING qid",
                          (env.queue_id, str(env.mail_from), env.received_at, len(message), time.time(),
                           envelope_json(env), message)).fetchone()
            if r is None:
                raise FileExistsError(f"queue id {env.queue_id} already in the queue")
            with c.cursor() as cur:
                cur.executemany("INSERT INTO queue_rcpt (qid, idx, address) VALUES (%s,%s,%s)",
                                [(env.queue_id, i, str(rc.address)) for i, rc in enumerate(env.rcpts)])
        return self.path(env.queue_id)

    def read(self, qid: str) -> tuple[Envelope, bytes]:
        with self.pool.conn() as c:
            r = c.execute("SELECT envelope, message FROM queue WHERE qid=%s", (qid,)).fetchone()
        if r is None or r[0] is None or r[1] is None:
            raise FileNotFoundError(qid)
        return envelope_from_json(bytes(r[0])), bytes(r[1])

    read_envelope_path = staticmethod(Spool.read_envelope_path)  # a sendmail drop waiting in incoming/

    def read_envelope(self, qid: str) -> Envelope:
        with self.pool.conn() as c:
            r = c.execute("SELECT envelope FROM queue WHERE qid=%s", (qid,)).fetchone()
        if r is None or r[0] is None:
            raise FileNotFoundError(qid)
        return envelope_from_json(bytes(r[0]))

    def remove(self, qid: str) -> None:
        with self.pool.conn() as c:
            c.execute("DELETE FROM queue WHERE qid=%s", (qid,))

    def quarantine(self, path: Path) -> Path:
        return path  # rows are written whole in one transaction: nothing to set aside

    def queued_ids(self) -> list[str]:
        with self.pool.conn() as c:
            return sorted(r[0] for r in c.execute("SELECT qid FROM queue"))

    def incoming_files(self) -> list[Path]:
        return sorted(p for p in self.incoming.iterdir() if not p.name.startswith("."))

    def adopt(self, path: Path) -> str:
        """A verified sendmail drop of this node into the shared queue."""
        env, message = decode(path.read_bytes())
        self.write(env, [message[i:i + CHUNK] for i in range(0, len(message), CHUNK)])
        path.unlink()
        return env.queue_id

    def clean_tmp(self, older_than: float = 3600.0) -> int:
        return 0


class PgQueueStore:
    """``api.QueueStore`` over the shared queue tables; ``due`` claims with a lease for this node."""

    def __init__(self, pool: Pool, node: str, lease: float) -> None:
        self.pool = pool
        self.node = node
        self.lease = lease

    # ------------------------------------------------------------------ writes

    def add(self, qid: str, sender: str, created: float, size: int, rcpts: list[str],
            next_attempt: float | None = None) -> bool:
        """Registers a message; False when it is known — as every message ``PgSpool.write`` stored is (it writes
        the row with the message, in the transaction the 250 waits for)."""
        with self.pool.tx() as c:
            if c.execute("INSERT INTO queue (qid, sender, created, size, next_attempt) VALUES (%s,%s,%s,%s,%s) "
                         "ON CONFLICT (qid) DO NOTHING RETURNING qid",
                         (qid, sender, created, size, next_attempt if next_attempt is not None else time.time())
                         ).fetchone() is None:
                return False
            with c.cursor() as cur:
                cur.executemany("INSERT INTO queue_rcpt (qid, idx, address) VALUES (%s,%s,%s)",
                                [(qid, i, a) for i, a in enumerate(rcpts)])
            return True

    def record(self, qid: str, results: dict[int, Outcome], *, next_attempt: float | None,
               last_error: str | None, count_attempt: bool = True,
               log_rows: Sequence[tuple[list[str], Outcome, str]] = (), delay_notified: bool = False) -> None:
        with self.pool.tx() as c:
            for rcpts, o, result in log_rows:
                self._log(c, qid, rcpts, o, result)
            if delay_notified:
                c.execute("UPDATE queue SET delay_notified=true WHERE qid=%s", (qid,))
            with c.cursor() as cur:
                cur.executemany("UPDATE queue_rcpt SET status=%s, code=%s, enhanced=%s, text=%s WHERE qid=%s AND idx=%s",
                                [("sent" if o.ok else ("failed" if o.permanent else "pending"), o.code, o.enhanced,
                                  o.text[:1000], qid, idx) for idx, o in results.items()])
            if next_attempt is not None:
                # the pass is over: the lease goes with it
                c.execute("UPDATE queue SET attempts=attempts+%s, next_attempt=%s, "
                          "last_error=COALESCE(%s, last_error), lease_owner=NULL, lease_until=NULL WHERE qid=%s",
                          (1 if count_attempt else 0, next_attempt, last_error, qid))

    def _log(self, c: object, qid: str, recipients: list[str], o: Outcome, result: str) -> None:
        c.execute(  # type: ignore[attr-defined]
            "INSERT INTO delivery_log (qid, time, node, recipients, host, address, result, code, enhanced, text, tls, "
            "tls_policy) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (qid, time.time(), self.node, ",".join(recipients), o.host, o.address, result, o.code, o.enhanced,
             o.text[:1000], o.tls, o.tls_policy))

    def log(self, qid: str, recipients: list[str], o: Outcome, result: str) -> None:
        with self.pool.conn() as c:
            self._log(c, qid, recipients, o, result)

    def set_delay_notified(self, qid: str) -> None:
        with self.pool.conn() as c:
            c.execute("UPDATE queue SET delay_notified=true WHERE qid=%s", (qid,))

    def remove(self, qid: str) -> None:
        with self.pool.conn() as c:
            c.execute("DELETE FROM queue WHERE qid=%s", (qid,))

    def retry_now(self, qid: str | None = None) -> int:
        now = time.time()
        with self.pool.conn() as c:
            if qid is None:
                return c.execute("UPDATE queue SET next_attempt=%s", (now,)).rowcount
            return c.execute("UPDATE queue SET next_attempt=%s WHERE qid=%s", (now, qid)).rowcount

    # ------------------------------------------------------------------ claims

    def due(self, now: float, limit: int, exclude: set[str]) -> tuple[list[str], float | None]:
        """Claims up to ``limit`` due messages for this node: unleased ones, lapsed leases of other nodes (dead),
        and this node's own (from before a restart) that it is not working on now."""
        out: list[str] = []
        with self.pool.tx() as c:
            if limit > 0:
                out = [r[0] for r in c.execute(
                    "UPDATE queue SET lease_owner=%s, lease_until=%s WHERE qid IN ("
                    " SELECT qid FROM queue WHERE next_attempt <= %s"
                    " AND (lease_owner IS NULL OR lease_until < %s OR lease_owner = %s) AND NOT (qid = ANY(%s))"
                    " ORDER BY next_attempt LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING qid",
                    (self.node, now + self.lease, now, now, self.node, list(exclude), limit))]
            nxt = c.execute("SELECT MIN(GREATEST(next_attempt, COALESCE(lease_until, 0))) FROM queue "
                            "WHERE next_attempt > %s OR (lease_owner <> %s AND lease_until >= %s)",
                            (now, self.node, now)).fetchone()[0]
        return out, nxt

    def renew(self, now: float) -> int:
        """Extends this node's leases (called while the node lives); how many."""
        with self.pool.conn() as c:
            return c.execute("UPDATE queue SET lease_until=%s WHERE lease_owner=%s",
                             (now + self.lease, self.node)).rowcount

    def release(self) -> int:
        """Gives up this node's leases (a clean stop: the runner has finished or abandoned its passes), so other
        nodes need not wait for them to lapse; how many."""
        with self.pool.conn() as c:
            return c.execute("UPDATE queue SET lease_owner=NULL, lease_until=NULL WHERE lease_owner=%s",
                             (self.node,)).rowcount

    # ------------------------------------------------------------------ reads

    def get(self, qid: str) -> QueueRow | None:
        with self.pool.conn() as c:
            r = c.execute("SELECT qid, sender, created, size, attempts, next_attempt, last_error, delay_notified "
                          "FROM queue WHERE qid=%s", (qid,)).fetchone()
            if r is None:
                return None
            rc = tuple((x[0], x[1], x[2]) for x in c.execute(
                "SELECT idx, address, status FROM queue_rcpt WHERE qid=%s ORDER BY idx", (qid,)))
        return QueueRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), rc)

    def all(self) -> list[QueueRow]:
        with self.pool.conn() as c:
            qids = [r[0] for r in c.execute("SELECT qid FROM queue ORDER BY created, qid")]
        return [row for q in qids if (row := self.get(q)) is not None]

    def qids(self) -> set[str]:
        with self.pool.conn() as c:
            return {r[0] for r in c.execute("SELECT qid FROM queue")}

    def history(self, qid: str) -> list[LogRow]:
        with self.pool.conn() as c:
            return [LogRow(*r) for r in c.execute(
                "SELECT time, recipients, host, address, result, code, enhanced, text, tls, tls_policy "
                "FROM delivery_log WHERE qid=%s ORDER BY id", (qid,))]

    def close(self) -> None:
        self.pool.close_thread()
