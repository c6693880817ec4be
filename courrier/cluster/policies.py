"""The MTA-STS policy cache in PostgreSQL (``migrations/0005_shared_state.sql``): what one node fetched holds for all.

``courrier/delivery/tlspolicy.py`` keeps fetched policies (RFC 8461 §5.1) in a ``PolicyStore``; the local store's is
the ``mta_sts_policy`` table of SQLite. A cluster's nodes share this one, so a policy in ``enforce`` mode that any
node has seen protects the mail every node relays to that domain — a node that never fetched it does not fall back
to opportunistic TLS because an attacker keeps it from the policy host — and survives the node.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from courrier.cluster.pg import Pool
from courrier.delivery import mtasts
from courrier.delivery.tlspolicy import CachedPolicy


class PgPolicyCache:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def get(self, domain: str) -> CachedPolicy | None:
        with self.pool.conn() as c:
            r = c.execute("SELECT id, policy, expires FROM mta_sts_policy WHERE domain=%s", (domain,)).fetchone()
        if r is None:
            return None
        try:
            return CachedPolicy(r[0], mtasts.parse_policy(r[1]), r[2])
        except mtasts.PolicyError:
            return None

    def put(self, domain: str, ident: str, text: str, fetched: float, expires: float) -> None:
        with self.pool.conn() as c:
            c.execute("INSERT INTO mta_sts_policy (domain, id, policy, fetched, expires) VALUES (%s,%s,%s,%s,%s) "
                      "ON CONFLICT (domain) DO UPDATE SET id=excluded.id, policy=excluded.policy, "
                      "fetched=excluded.fetched, expires=excluded.expires", (domain, ident, text, fetched, expires))


def copy_policies(local: sqlite3.Connection, c: psycopg.Cursor[Any]) -> int:
    """``courrier migrate``: the MTA-STS policies the local server fetched, in the caller's transaction."""
    rows = [tuple(r) for r in local.execute("SELECT domain, id, policy, fetched, expires FROM mta_sts_policy")]
    c.executemany("INSERT INTO mta_sts_policy (domain, id, policy, fetched, expires) VALUES (%s,%s,%s,%s,%s)", rows)
    return len(rows)
