"""One node of the cluster: its name, its notifications from the other nodes, and its leases.

A thread holds one connection of its own to the database, which

- holds a session advisory lock on the node's name: a second live node with the same name is refused at start,
  and a node killed with SIGKILL frees the name at once (PostgreSQL drops the lock with the dead connection);
- ``LISTEN courrier``: every write of the mail store sends ``NOTIFY courrier, 'node␟account␟folder'`` in its
  transaction; the thread hands each notification from another node to the loop, where the store tells the IMAP
  sessions watching that folder (IDLE, RFC 2177) — within milliseconds of the commit;
- renews the node's queue leases every third of ``[store] lease``.

When the connection breaks (database restart, network) the thread connects again with back-off, takes its lock
again, and tells every watched folder it may have changed (notifications sent meanwhile were lost).
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Callable

import psycopg

from courrier import log
from courrier.cluster.mailstore import CHANNEL
from courrier.cluster.pg import Unavailable, connect, outage_seen


class NodeNameTaken(Exception):
    pass


def lock_key(node: str) -> int:
    return 0x6E6F6465_00000000 + zlib.crc32(node.encode("utf-8"))  # "node" + name


class Node:
    def __init__(self, dsn: str, name: str, *, timeout: float, lease: float,
                 on_change: Callable[[str, str], None], on_lost: Callable[[], None],
                 renew: Callable[[float], int]) -> None:
        self.dsn = dsn
        self.name = name
        self.timeout = timeout
        self.lease = lease
        self.on_change = on_change  # (account, folder) changed elsewhere: called on the loop
        self.on_lost = on_lost  # notifications may have been missed: called on the loop
        self.renew = renew  # extends this node's queue leases (blocking)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _claim(self) -> psycopg.Connection:
        c = connect(self.dsn, self.timeout, name=f"{self.name} listen")
        try:
            if not c.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.name),)).fetchone()[0]:
                c.close()
                raise NodeNameTaken(f"node name {self.name!r} is used by another live node ([store] node)")
            now = time.time()
            c.execute("INSERT INTO nodes(name, started, seen) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE "
                      "SET started=excluded.started, seen=excluded.seen", (self.name, now, now))
            c.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as e:
            c.close()
            raise Unavailable(e) from None
        return c

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Claims the name (NodeNameTaken, Unavailable) and starts the thread."""
        self._loop = loop
        self._conn = self._claim()
        self._thread = threading.Thread(target=self._run, name="courrier-node", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing what may be gone
                pass

    def _deliver(self, payload: str) -> None:
        node, _, rest = payload.partition("\x1f")
        account, _, folder = rest.partition("\x1f")
        if node != self.name and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_change, account, folder)

    def _run(self) -> None:
        every = max(0.2, self.lease / 3)
        next_renew = 0.0
        backoff = 0.2
        while not self._stop.is_set():
            c = self._conn
            try:
                if c is None or c.closed or c.broken:
                    self._conn = c = None
                    c = self._claim()
                    self._conn = c
                    log.event("cluster.reconnected", node=self.name)
                    if self._loop is not None:
                        self._loop.call_soon_threadsafe(self.on_lost)
                    backoff = 0.2
                for n in c.notifies(timeout=min(every, 0.5), stop_after=1000):
                    self._deliver(n.payload)
                now = time.time()
                if now >= next_renew:
                    self.renew(now)
                    c.execute("UPDATE nodes SET seen=%s WHERE name=%s", (now, self.name))
                    next_renew = now + every
            except NodeNameTaken as e:
                log.event("cluster.name_taken", level="error", node=self.name, error=str(e))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except (OSError, psycopg.Error) as e:
                if self._stop.is_set():
                    return
                outage_seen()
                log.event("cluster.db_unavailable", level="warn", node=self.name, error=str(e).strip()[:200])
                if c is not None:
                    try:
                        c.close()
                    except Exception:  # noqa: BLE001
                        pass
                self._conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
