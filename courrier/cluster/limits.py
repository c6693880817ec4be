"""The failed-login limiter's counters in PostgreSQL (``migrations/0005_shared_state.sql``): one budget per client
and per account for the whole cluster, whichever node and protocol the attempts go to.

Each node keeps its own ``AuthLimiter`` (courrier/auth/limiter.py: per-node slots, answered without a round trip);
the gate (courrier/auth/gate.py) also asks this shared ledger, in a worker thread, before it lets a password be
checked. The ledger counts the same things with the same thresholds (``[limits] auth_failures_per_ip`` per client,
``3 ×`` that or ``max(2, budget)`` different clients per account, locks of 5 minutes, clients that logged in to an
account exempt from its lock) in a cheap scheme:

- ``auth_counts``: one row per key (``c:`` client, ``a:`` account) and fixed window of ``window`` seconds, bumped by an
  upsert. A slot is taken *before* the check (``n + 1``) and given back if the password was right, so checks in
  flight on several nodes count against the budget as failures do: N nodes cannot run N budgets at once. The
  window's estimate is ``n(this window) + n(previous) × (the part of the previous window still inside the sliding
  one)``, the usual sliding-window approximation, so a burst on both sides of a window edge does not pass twice.
- ``auth_locks``: when a budget is spent the key is locked until ``now + lock`` and its counts are cleared (as the
  local limiter clears its failures).
- ``auth_account_clients``: the clients that failed on an account in a window; ``auth_known``: account and client
  pairs that logged in (the account's lock does not apply to them).

Every call is one transaction; the row lock taken by the upsert orders concurrent attempts of one client. Stale
rows are deleted at most once a minute. The node also remembers the client locks it saw, so
:meth:`PgAuthCounters.locked` (asked before a SASL exchange, on the event loop) needs no round trip.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from courrier.auth.limiter import AuthLimiter, account_key
from courrier.cluster.pg import Pool

SWEEP = 60.0  # seconds between deletions of stale rows (per node)
# Counters are not mail: their commits need not wait for the WAL flush (a database crash may forget the last few
# failures, never a message). Other sessions see the rows at commit all the same.
_NO_FLUSH = "SET LOCAL synchronous_commit = off"


@dataclass(frozen=True)
class Ticket:
    """A slot taken in the ledger: given back (right password, or not used) or kept as a failure by ``settle``."""

    client: str
    account: str | None
    win: int


class _Refused(Exception):
    def __init__(self, what: str) -> None:
        self.what = what


class PgAuthCounters:
    def __init__(self, pool: Pool, limiter: AuthLimiter, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.budget, self.window, self.lock = limiter.budget, limiter.window, limiter.lock
        self.account_failures, self.account_clients = limiter.account_failures, limiter.account_clients
        self.known_for = limiter.known_for
        self.clock = clock
        self._locked: dict[str, float] = {}  # client key → lock end (time.time) this node saw in the ledger
        self._guard = threading.Lock()
        self._swept = 0.0

    # ------------------------------------------------------------------ helpers

    def _win(self, now: float) -> tuple[int, float]:
        w = math.floor(now / self.window)
        return w, (now - w * self.window) / self.window

    def _estimate(self, c: psycopg.Connection, key: str, w: int, frac: float) -> float:
        rows = dict(c.execute("SELECT win, n FROM auth_counts WHERE key=%s AND win IN (%s, %s)",
                              (key, w, w - 1)).fetchall())
        return rows.get(w, 0) + rows.get(w - 1, 0) * (1 - frac)

    def _bump(self, c: psycopg.Connection, key: str, w: int) -> None:
        c.execute("INSERT INTO auth_counts AS a (key, win, n) VALUES (%s, %s, 1) "
                  "ON CONFLICT (key, win) DO UPDATE SET n = a.n + 1", (key, w))

    def _lock_key(self, c: psycopg.Connection, key: str, now: float) -> None:
        c.execute("INSERT INTO auth_locks AS l (key, until) VALUES (%s, %s) "
                  "ON CONFLICT (key) DO UPDATE SET until = excluded.until", (key, now + self.lock))
        c.execute("DELETE FROM auth_counts WHERE key=%s", (key,))
        if key.startswith("a:"):
            c.execute("DELETE FROM auth_account_clients WHERE account=%s", (key[2:],))

    def _remember_lock(self, client: str, until: float) -> None:
        with self._guard:
            if len(self._locked) > 10000:
                now = self.clock()
                self._locked = {k: v for k, v in self._locked.items() if v > now}
            self._locked[client] = until

    def _sweep(self, c: psycopg.Connection, now: float, w: int) -> None:
        if now - self._swept < SWEEP:
            return
        self._swept = now
        c.execute("DELETE FROM auth_counts WHERE win < %s", (w - 1,))
        c.execute("DELETE FROM auth_account_clients WHERE win < %s", (w - 1,))
        c.execute("DELETE FROM auth_locks WHERE until < %s", (now,))
        c.execute("DELETE FROM auth_known WHERE until < %s", (now,))

    # ------------------------------------------------------------------ the gate's questions

    def locked(self, client: str) -> bool:
        """A client lock seen in the ledger that still runs (no round trip: asked on the event loop)."""
        until = self._locked.get(client)
        return until is not None and until > self.clock()

    def reserve(self, client: str, user: str | None) -> Ticket | None:
        """A slot for one password check of ``user`` from ``client``, or None: the cluster refuses it (nothing is
        counted then). Raises ``Unavailable`` (OSError) when the database cannot be asked."""
        now = self.clock()
        account = account_key(user) if user is not None else None
        w, frac = self._win(now)
        ck, ak = "c:" + client, ("a:" + account if account is not None else None)
        try:
            with self.pool.tx() as c:
                c.execute(_NO_FLUSH)
                locks = dict(c.execute("SELECT key, until FROM auth_locks WHERE key = ANY(%s) AND until > %s",
                                       ([ck, ak] if ak else [ck], now)).fetchall())
                if ck in locks:
                    self._remember_lock(client, locks[ck])
                    raise _Refused("client")
                self._bump(c, ck, w)  # takes the row's lock: one client's attempts are counted one at a time
                if self._estimate(c, ck, w, frac) > self.budget:
                    raise _Refused("client")
                if ak is not None:
                    self._bump(c, ak, w)
                    known = c.execute("SELECT 1 FROM auth_known WHERE account=%s AND client=%s AND until > %s",
                                      (account, client, now)).fetchone()
                    if not known:
                        if ak in locks or self._estimate(c, ak, w, frac) > self.account_failures:
                            raise _Refused("account")
                        others = {r[0] for r in c.execute(
                            "SELECT DISTINCT client FROM auth_account_clients WHERE account=%s AND win >= %s",
                            (account, w - 1))}
                        if client not in others and len(others) >= self.account_clients:
                            raise _Refused("account")
                self._sweep(c, now, w)
        except _Refused:
            return None  # the transaction was rolled back: nothing counted
        return Ticket(client, account, w)

    def settle(self, t: Ticket, outcome: str) -> list[str]:
        """Ends a check: ``ok`` and ``unused`` give the slot back (``ok`` makes the client known to the account);
        ``failed`` keeps it as a failure and locks what spent its budget. Returns what became locked."""
        now = self.clock()
        keys = ["c:" + t.client] + (["a:" + t.account] if t.account is not None else [])
        with self.pool.tx() as c:
            c.execute(_NO_FLUSH)
            if outcome != "failed":
                for key in keys:  # client, then account: the order reserve locks them in (no deadlock)
                    c.execute("UPDATE auth_counts SET n = GREATEST(n - 1, 0) WHERE key=%s AND win=%s", (key, t.win))
                if outcome == "ok" and t.account is not None:
                    c.execute("INSERT INTO auth_known AS k (account, client, until) VALUES (%s, %s, %s) "
                              "ON CONFLICT (account, client) DO UPDATE SET until = excluded.until",
                              (t.account, t.client, now + self.known_for))
                return []
            return self._failed(c, t.client, t.account, now)

    def failed(self, client: str) -> list[str]:
        """A failure without a password check (malformed SASL): counted at once."""
        now = self.clock()
        w, _ = self._win(now)
        with self.pool.tx() as c:
            c.execute(_NO_FLUSH)
            self._bump(c, "c:" + client, w)
            return self._failed(c, client, None, now)

    def _failed(self, c: psycopg.Connection, client: str, account: str | None, now: float) -> list[str]:
        w, frac = self._win(now)
        newly = []
        ck = "c:" + client
        live = {r[0] for r in c.execute("SELECT key FROM auth_locks WHERE key = ANY(%s) AND until > %s",
                                        ([ck, "a:" + (account or "")], now))}
        if ck not in live and self._estimate(c, ck, w, frac) >= self.budget:
            self._lock_key(c, ck, now)
            self._remember_lock(client, now + self.lock)
            newly.append("client")
        if account is not None and "a:" + account not in live:
            c.execute("INSERT INTO auth_account_clients VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                      (account, w, client))
            clients = c.execute("SELECT count(DISTINCT client) FROM auth_account_clients WHERE account=%s "
                                "AND win >= %s", (account, w - 1)).fetchone()[0]
            if clients >= self.account_clients or self._estimate(c, "a:" + account, w, frac) >= self.account_failures:
                self._lock_key(c, "a:" + account, now)
                newly.append("account")
        return newly
