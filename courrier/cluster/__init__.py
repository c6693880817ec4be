"""The cluster store: several ``courrier serve`` nodes on one PostgreSQL (``[store] backend = "postgresql"``).

``Cluster`` is what the composition root (``app.py``) builds instead of the Maildir store: the schema brought up to
date, the accounts (``accounts.py``), the mail store (``mailstore.py``), the queue's spool and store (``queue.py``), the node (``node.py``:
name lock, notifications from other nodes, lease renewal), and the state the nodes share besides mail: Sieve scripts
and vacation memory (``sieve_store.py``), the failed-login counters (``limits.py``), the MTA-STS policy cache
(``policies.py``). docs/cluster.md describes the design.
"""

from __future__ import annotations

import asyncio
from typing import Any

from courrier import log
from courrier.auth.limiter import AuthLimiter
from courrier.cluster.accounts import PgAccounts
from courrier.cluster.history import DeliveryHistory
from courrier.cluster.limits import PgAuthCounters
from courrier.cluster.mailstore import PgMailStore, node_name
from courrier.cluster.node import Node, NodeNameTaken
from courrier.cluster.pg import Pool, Unavailable, migrate
from courrier.cluster.policies import PgPolicyCache
from courrier.cluster.queue import PgQueueStore, PgSpool
from courrier.cluster.sieve_store import PgSieveStore
from courrier.config import Config
from courrier.lifecycle import StartupError


class Cluster:
    def __init__(self, cfg: Config) -> None:
        st = cfg.store
        self.cfg = cfg
        self.name = node_name(st.node)
        try:
            applied = migrate(st.dsn, st.timeout)
        except Unavailable as e:
            raise StartupError(f"[store] dsn: {e.strerror}") from None
        self.applied = applied  # told in the banner (stdout): stderr stays for what went wrong
        # one pool bounded as a whole ([store] pool_size): mail store, queue threads and account lookups share it;
        # the node's notification connection (node.py) is apart
        self.pool = Pool(st.dsn, st.timeout, size=st.pool_size, name=self.name)
        self.accounts = PgAccounts(st.dsn, st.timeout, pool=self.pool)
        self.store = PgMailStore(st.dsn, node=self.name, pool_size=st.pool_size, timeout=st.timeout, pool=self.pool)
        self.queue_pool = self.pool
        self.queue_store = PgQueueStore(self.queue_pool, self.name, st.lease)
        self.history = DeliveryHistory(self.pool, self.name, st.lease)  # the web API's view: queue + every node's log
        # Sieve, login counters, MTA-STS policies: a second small bounded pool, so a flood of deliveries holding
        # the first can never keep a login check waiting
        self.shared_pool = Pool(st.dsn, st.timeout, size=4, name=f"{self.name} shared")
        self.sieve_scripts = PgSieveStore(self.shared_pool)
        self.node = Node(st.dsn, self.name, timeout=st.timeout, lease=st.lease, on_change=self._changed,
                         on_lost=self.store.notify_all, renew=self.queue_store.renew)

    def adopt_queue(self, queue: Any) -> None:
        """The runner (queue/runner.py:Queue) works the shared queue: its spool and store become the cluster's."""
        queue.spool = PgSpool(self.queue_pool, self.cfg.data_dir / "queue")
        queue.store = self.queue_store
        tls_policy = getattr(queue.transport.remote, "tls_policy", None)
        if tls_policy is not None and tls_policy.cache is not None:  # MTA-STS policies any node fetched
            tls_policy.cache = PgPolicyCache(self.shared_pool)

    def auth_counters(self, limiter: AuthLimiter) -> PgAuthCounters:
        """The failed-login counters every node shares, with ``limiter``'s thresholds (courrier/auth/gate.py)."""
        return PgAuthCounters(self.shared_pool, limiter)

    def _changed(self, account: str, folder: str) -> None:
        self.store.notify((account, folder))

    async def start(self) -> None:
        """Claims the node's name; StartupError when another live node has it or the database is unreachable."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.node.start, loop)
        except NodeNameTaken as e:
            raise StartupError(str(e)) from None
        except Unavailable as e:
            raise StartupError(f"[store] dsn: {e.strerror}") from None
        log.event("cluster.joined", node=self.name)

    async def stop(self) -> None:
        """After the queue runner stopped (services stop in reverse order): its leases go back at once."""
        loop = asyncio.get_running_loop()
        try:
            released = await loop.run_in_executor(None, self.queue_store.release)
            if released:
                log.event("cluster.leases_released", node=self.name, messages=released)
        except Unavailable:
            pass  # they lapse on their own
        await loop.run_in_executor(None, self.node.stop)
        self.queue_pool.close()
        self.shared_pool.close()
        self.accounts.close()

    @property
    def banner(self) -> list[str]:
        lines = [f"cluster node {self.name} (PostgreSQL store)"]
        if self.applied:
            lines.append(f"  schema: applied {', '.join(self.applied)}")
        return lines
