"""An in-process event hub: the capture store publishes Mailpit's events, the web layer forwards them.

Events are dicts shaped like Mailpit's WebSocket frames, ``{"Type": …, "Data": …}``; the web layer writes the frame
(``web/events.frame``):

| Type       | Data                                                       | when                               |
|------------|------------------------------------------------------------|------------------------------------|
| `new`      | a ``records.Summary`` (``web/api/mailpit.py`` spells it)   | a message was captured             |
| `update`   | ``{"ID": id, "Read": bool}``                               | read state changed                 |
| `delete`   | ``{"ID": id}``                                             | one message deleted                |
| `truncate` | ``None``                                                   | every message deleted              |
| `prune`    | ``None``                                                   | retention removed old messages     |
| `stats`    | ``{"Total": n, "Unread": n, "Version": "…"}``              | after any of the above             |

Subscribers are plain callables ``cb(event: dict) -> None``. Once ``bind(loop)`` has been called (the app does it at
start), every callback runs on that event loop's thread, whichever thread published (the store writes from disk
threads) — so a callback may touch asyncio objects (``queue.put_nowait``) but must not block. A callback that
raises is logged and kept.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from courrier import log

Event = dict[str, Any]
Callback = Callable[[Event], None]


class EventHub:
    def __init__(self) -> None:
        self._subs: list[Callback] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Callbacks will run on ``loop`` (None: in the publishing thread)."""
        self._loop = loop

    def subscribe(self, cb: Callback) -> Callback:
        with self._lock:
            self._subs.append(cb)
        return cb

    def unsubscribe(self, cb: Callback) -> None:
        with self._lock:
            try:
                self._subs.remove(cb)
            except ValueError:
                pass

    @property
    def active(self) -> bool:
        """True when someone listens (publishers skip building events nobody reads)."""
        return bool(self._subs)

    def publish(self, type_: str, data: Any = None) -> None:
        if not self._subs:
            return
        event = {"Type": type_, "Data": data}
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._deliver, event)
                return
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for cb in subs:
            try:
                cb(event)
            except Exception as e:  # one broken subscriber must not stop the others
                log.event("capture.event_callback_failed", level="error", type=event["Type"], error=repr(e))
