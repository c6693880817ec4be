"""Everything the web layer needs from the rest of courrier, handed over once by the composition root.

``App.web_context`` passes its components to ``build_context`` by name and type — the web layer never sees the App
(and imports nothing from ``courrier.app``: no ``getattr`` on an object of a higher layer). Handlers receive this
object (``request.app.state.ctx``): it names exactly what the inspector depends on — the config, the accounts, the
capture store (through ``CaptureSource``, a ``source.MessageSource``) or, in server mode, the accounts' mailboxes (``MailboxSource``), the
event hub, the pause switch, the outbound path for ``release``, and runtime counters for ``/api/v1/info``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from courrier.accounts import Accounts
from courrier.auth import AuthGate, TrustedProxies
from courrier.capture.records import Summary
from courrier.config import Config
from courrier.web.auth import HTTPAuth, load_htpasswd

if TYPE_CHECKING:
    from courrier.capture.api import CaptureBackend
    from courrier.capture.events import EventHub
    from courrier.mailbox.api import MailStore
    from courrier.observe import Observer
    from courrier.web.mailboxes import MailboxSource
    from courrier.web.relay import Outbound
    from courrier.web.store import CaptureSource
    from courrier.web.verdicts import AuthChecks


@dataclass
class RuntimeStats:
    """Mailpit's ``RuntimeStats``: counted from store events since start."""

    started: float = field(default_factory=time.time)
    accepted: int = 0
    accepted_size: int = 0
    deleted: int = 0

    def on_event(self, event: dict[str, Any]) -> None:
        t, data = event.get("Type"), event.get("Data")
        if t == "new" and isinstance(data, Summary):
            self.accepted += 1
            self.accepted_size += data.size
        elif t == "delete":
            self.deleted += 1


@dataclass
class WebContext:
    cfg: Config
    auth: HTTPAuth
    accounts: Accounts
    source: CaptureSource | None  # capture mode (server mode: ``mailboxes``)
    hub: EventHub | None  # capture mode: the store's events (subscribe(cb) / unsubscribe(cb))
    get_paused: Callable[[], bool]
    set_paused: Callable[[bool], None]
    relay: Callable[[str, str, list[str], bytes], Awaitable[None]] | None
    relay_description: str = ""
    mailboxes: MailboxSource | None = None  # server mode: the accounts' Maildirs (``?mailbox=``), see mailboxes.py
    stats: RuntimeStats = field(default_factory=RuntimeStats)
    ready: bool = True
    observer: Observer | None = None  # /metrics (web/metrics.py)
    verdicts: AuthChecks | None = None  # SPF/DKIM/DMARC on demand (web/verdicts.py), set by build_context
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    _queue_store: Any = None

    def queue_store(self) -> Any:
        """The outbound queue's state (``courrier.queue.api.QueueStore``), opened on first use."""
        if self._queue_store is None:
            if self.cfg.store.backend == "postgresql" and not self.cfg.capture_mode:  # a cluster: every node's
                from courrier.cluster.history import open_history

                self._queue_store = open_history(self.cfg)
            else:
                from courrier.queue.store import SQLiteQueueStore

                self._queue_store = SQLiteQueueStore(self.cfg.db_path)
        return self._queue_store

    def recent_deliveries(self, limit: int) -> list[Any]:
        """The newest delivery attempts, newest first (blocking): rows with the delivery log's columns."""
        store = self.queue_store()
        if hasattr(store, "recent"):  # the cluster's log (courrier/cluster/history.py), with the node that tried
            return store.recent(limit)  # type: ignore[no-any-return]
        from contextlib import closing

        from courrier import db

        with closing(db.connect(self.cfg.db_path)) as c:
            return c.execute("SELECT * FROM delivery_log ORDER BY id DESC LIMIT ?", (limit,)).fetchall()

    async def aclose(self) -> None:
        for c in self.closers:
            await c()


def _admin_verifier(accounts: Accounts) -> Callable[[str, str], bool]:
    def verify(user: str, password: str) -> bool:
        acct = accounts.verify(user, password)
        return bool(acct and acct.is_admin)

    return verify


def build_context(cfg: Config, accounts: Accounts, auth_gate: AuthGate, *, capture: CaptureBackend | None,
                  mail_store: MailStore, get_paused: Callable[[], bool], set_paused: Callable[[bool], None],
                  outbound: Outbound | None, observer: Observer | None = None,
                  queue_store: Any = None) -> WebContext:
    """The inspector's context from the components the composition root built (``App.web_context``); raises
    BindError for an unusable auth file. Called on the running loop: the event hub is bound to it."""
    from courrier.web.auth import AuthFileError
    from courrier.web.relay import make_relay
    from courrier.web.server import BindError
    from courrier.web.store import CaptureSource
    from courrier.web.verdicts import AuthChecks
    from courrier.web.webhook import Webhook

    users = None
    if cfg.http.auth_file is not None:
        try:
            users = load_htpasswd(cfg.http.auth_file)
        except AuthFileError as e:
            raise BindError(f"[http] auth_file: {e}") from None
    verify = _admin_verifier(accounts) if not cfg.capture_mode else None
    auth = HTTPAuth(users, verify, auth_gate, TrustedProxies(cfg.http.trusted_proxies))
    source = CaptureSource(capture) if capture is not None else None
    hub = capture.events if capture is not None else None
    relay, relay_desc = make_relay(outbound, cfg) if outbound is not None else (None, "")
    mailboxes = None
    if source is None:  # server mode: the inspector shows the accounts' mailboxes (admins only, see auth.py)
        from courrier.web.mailboxes import MailboxSource

        mailboxes = MailboxSource(mail_store, accounts)
    ctx = WebContext(cfg=cfg, auth=auth, accounts=accounts, source=source, hub=hub, get_paused=get_paused,
                     set_paused=set_paused, relay=relay, relay_description=relay_desc, mailboxes=mailboxes,
                     observer=observer)
    if queue_store is not None:  # a cluster node: the shared queue (docs/cluster.md), not the data dir's tables
        ctx._queue_store = queue_store
    verdicts = ctx.verdicts = AuthChecks(cfg)

    async def close_verdicts() -> None:
        verdicts.close()

    ctx.closers.append(close_verdicts)
    if source is not None:
        source.verdicts = ctx.verdicts
    if hub is not None:
        hub.subscribe(ctx.stats.on_event)
        hub.bind(asyncio.get_running_loop())
        if cfg.http.webhook_url:
            hook = Webhook(cfg.http.webhook_url)
            hub.subscribe(hook.on_event)
            ctx.closers.append(hook.aclose)
    return ctx
