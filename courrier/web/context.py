"""Everything the web layer needs from the rest of courrier, gathered once by ``context_from_app``.

Handlers receive this object (``request.app.state.ctx``) instead of reaching into the App: it names exactly what
the inspector depends on — the config, the accounts, the capture store (through ``MessageSource``) or, in server
mode, the accounts' mailboxes (``MailboxSource``), the event hub,
the pause switch, the outbound path for ``release``, and runtime counters for ``/api/v1/info``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from courrier.accounts import Accounts
from courrier.auth import TrustedProxies
from courrier.config import Config
from courrier.web.auth import HTTPAuth, load_htpasswd

if TYPE_CHECKING:
    from courrier.app import App
    from courrier.web.mailboxes import MailboxSource
    from courrier.web.store import MessageSource


@dataclass
class RuntimeStats:
    """Mailpit's ``RuntimeStats``: counted from store events since start."""

    started: float = field(default_factory=time.time)
    accepted: int = 0
    accepted_size: int = 0
    deleted: int = 0

    def on_event(self, event: dict[str, Any]) -> None:
        t, data = event.get("Type"), event.get("Data")
        if t == "new" and isinstance(data, dict):
            self.accepted += 1
            self.accepted_size += int(data.get("Size") or 0)
        elif t == "delete":
            self.deleted += 1


@dataclass
class WebContext:
    cfg: Config
    auth: HTTPAuth
    accounts: Accounts
    source: MessageSource | None
    hub: Any | None  # courrier.capture.events.EventHub: subscribe(cb) / unsubscribe(cb)
    get_paused: Callable[[], bool]
    set_paused: Callable[[bool], None]
    relay: Callable[[str, str, list[str], bytes], Awaitable[None]] | None
    relay_description: str = ""
    mailboxes: MailboxSource | None = None  # server mode: the accounts' Maildirs (``?mailbox=``), see mailboxes.py
    stats: RuntimeStats = field(default_factory=RuntimeStats)
    ready: bool = True
    observer: Any = None  # courrier.observe.Observer: /metrics (web/metrics.py)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    _queue_store: Any = None

    def queue_store(self) -> Any:
        """The outbound queue's tables (``courrier.queue.store.QueueStore``), opened on first use."""
        if self._queue_store is None:
            from courrier.queue.store import QueueStore

            self._queue_store = QueueStore(self.cfg.db_path)
        return self._queue_store

    async def aclose(self) -> None:
        for c in self.closers:
            await c()


def _admin_verifier(accounts: Accounts) -> Callable[[str, str], bool]:
    def verify(user: str, password: str) -> bool:
        acct = accounts.verify(user, password)
        return bool(acct and acct.is_admin)

    return verify


def context_from_app(app: App) -> WebContext:
    """Wires the inspector to the App's components (raises BindError for an unusable auth file)."""
    from courrier.web.auth import AuthFileError
    from courrier.web.relay import make_relay
    from courrier.web.server import BindError
    from courrier.web.store import source_from_app
    from courrier.web.webhook import Webhook

    cfg = app.cfg
    users = None
    if cfg.http.auth_file is not None:
        try:
            users = load_htpasswd(cfg.http.auth_file)
        except AuthFileError as e:
            raise BindError(f"[http] auth_file: {e}") from None
    verify = _admin_verifier(app.accounts) if not cfg.capture_mode else None
    auth = HTTPAuth(users, verify, app.auth_gate, TrustedProxies(cfg.http.trusted_proxies))

    capture = getattr(app, "capture", None)

    def get_paused() -> bool:
        return bool(capture.paused) if capture is not None else bool(app.paused)

    def set_paused(value: bool) -> None:
        # capture mode: the capture policy reads the store's switch; server mode: App.paused
        app.paused = value
        if capture is not None:
            capture.set_paused(value)

    source, hub = source_from_app(app)
    relay, relay_desc = make_relay(app)
    mailboxes = None
    if source is None:  # server mode: the inspector shows the accounts' mailboxes (admins only, see auth.py)
        from courrier.web.mailboxes import MailboxSource

        mailboxes = MailboxSource(app.store, app.accounts)
    ctx = WebContext(cfg=cfg, auth=auth, accounts=app.accounts, source=source, hub=hub, get_paused=get_paused,
                     set_paused=set_paused, relay=relay, relay_description=relay_desc, mailboxes=mailboxes,
                     observer=getattr(app, "observer", None))
    if hub is not None:
        hub.subscribe(ctx.stats.on_event)
        if hasattr(hub, "bind"):
            hub.bind(asyncio.get_running_loop())
        if cfg.http.webhook_url:
            hook = Webhook(cfg.http.webhook_url)
            hub.subscribe(hook.on_event)
            ctx.closers.append(hook.aclose)
    return ctx
