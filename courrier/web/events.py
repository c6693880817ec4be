"""``/api/events``: the WebSocket of live events, frames exactly as Mailpit sends them.

Each frame is one JSON object ``{"Type": "new"|"update"|"delete"|"prune"|"truncate"|"stats", "Data": …}`` taken
from the capture store's event hub — or, in server mode, made by ``MailboxView.watch`` for the mailbox chosen with
``/api/events?mailbox=account/folder`` (default: the admin's own INBOX), woken by the mailbox notifier. A client that does not keep up (``MAX_BACKLOG`` frames waiting) is
disconnected with 1013 rather than letting its backlog grow without bound; the UI reconnects and reloads.
In capture mode the first frame is a ``stats`` one (the counts as they are on connect), as Mailpit sends. With
``?mailbox=NAME`` (a capture mailbox: envelope recipient or SMTP AUTH user) only that mailbox's ``new`` messages are
sent and ``stats`` counts that mailbox; ``update``/``delete`` of other messages pass (the UI ignores unknown IDs).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

from starlette.exceptions import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect

from courrier.web.api import mailpit
from courrier.web.mailview import MailboxView
from courrier.web.store import CaptureSource

MAX_BACKLOG = 1000


async def _for_mailbox(src: CaptureSource, event: dict[str, Any]) -> dict[str, Any] | None:
    """The event as a client of one capture mailbox sees it: None for a new message of another mailbox."""
    kind, data = event.get("Type"), event.get("Data")
    if kind == "new":
        msg_id = getattr(data, "id", None)
        if msg_id is None or await src.resolve_in(msg_id) is None:
            return None
    elif kind == "stats" and isinstance(data, dict):
        total, unread = await src.counts()
        return {"Type": "stats", "Data": {**data, "Total": total, "Unread": unread}}
    return event


def frame(event: dict[str, Any]) -> str:
    """One WebSocket frame: the event as Mailpit's JSON text (its record spelled by ``api/mailpit.py``)."""
    return json.dumps(mailpit.event(event), ensure_ascii=False)


async def endpoint(ws: WebSocket) -> None:
    ctx = ws.app.state.ctx
    view = None
    if ctx.mailboxes is not None:
        principal = ws.scope.get("state", {}).get("principal")
        own = principal.user if principal is not None and principal.source == "account" else None
        try:
            view = MailboxView(ctx.mailboxes, ws.query_params.get("mailbox"), own)
            await view.mailbox()
        except HTTPException:
            await ws.close(1008)  # policy violation: no such mailbox (or none named)
            return
    scoped = None
    if view is None and ctx.source is not None and ws.query_params.get("mailbox", "").strip():
        scoped = ctx.source.within(ws.query_params["mailbox"][:320])
    await ws.accept()
    hub = ctx.hub
    if hub is None and view is None:  # no capture store: nothing will ever happen; keep the socket open until the client leaves
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            return
    backlog: deque[dict[str, Any]] = deque()
    wake = asyncio.Event()
    overflow = False

    def on_event(event: dict[str, Any]) -> None:  # runs on the loop (the hub is bound to it)
        nonlocal overflow
        if len(backlog) >= MAX_BACKLOG:
            overflow = True
        else:
            backlog.append(event)
        wake.set()

    watcher = None
    if view is not None:
        watcher = asyncio.create_task(view.watch(on_event))
    else:
        hub.subscribe(on_event)
        if ctx.source is not None:  # Mailpit sends the mailbox stats on connect (server/websockets/client.go)
            stats = await asyncio.get_running_loop().run_in_executor(None, ctx.source.store.stats)
            on_event({"Type": "stats", "Data": stats})

    async def reader() -> None:
        try:
            while True:
                await ws.receive_text()  # Mailpit's UI sends nothing; we only watch for the close
        except WebSocketDisconnect:
            pass

    read_task = asyncio.create_task(reader())
    try:
        while not read_task.done():
            waiter = asyncio.create_task(wake.wait())
            await asyncio.wait({waiter, read_task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            wake.clear()
            if overflow:
                await ws.close(1013)  # try again later: the client reconnects and reloads
                break
            while backlog:
                event: dict[str, Any] | None = backlog.popleft()
                if scoped is not None:
                    event = await _for_mailbox(scoped, event)
                if event is not None:
                    await ws.send_text(frame(event))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        if watcher is not None:
            watcher.cancel()
        else:
            hub.unsubscribe(on_event)
        read_task.cancel()
