"""The cluster's delivery history, as the web API and the commands read it on any node.

Every attempt any node makes is a row of ``delivery_log`` (``migrations/0001_cluster.sql``, written by
``queue.py:PgQueueStore`` in the transaction that records the pass, with the node that tried). ``DeliveryHistory`` is
that queue store plus the newest attempts over every message (``/api/courrier/delivery-log``), so ``courrier queue
show``, ``/api/courrier/queue/{QID}`` and the log answer the same on every node.
"""

from __future__ import annotations

from typing import Any

from courrier.cluster.pg import Pool
from courrier.cluster.queue import PgQueueStore
from courrier.config import Config

COLUMNS = ("qid", "time", "node", "recipients", "host", "address", "result", "code", "enhanced", "text", "tls",
           "tls_policy")


class DeliveryHistory(PgQueueStore):
    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` newest attempts of every node, newest first (the local log's columns, plus ``node``)."""
        with self.pool.conn() as c:
            rows = c.execute(f"SELECT {', '.join(COLUMNS)} FROM delivery_log ORDER BY id DESC LIMIT %s",
                             (limit,)).fetchall()
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def open_history(cfg: Config) -> DeliveryHistory:
    """A reader of the shared queue and log for a command or the web API (it claims nothing: node ``cli``)."""
    return DeliveryHistory(Pool(cfg.store.dsn, cfg.store.timeout), "cli", cfg.store.lease)
