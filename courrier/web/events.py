"""``/api/events``: the WebSocket of live events, frames exactly as Mailpit sends them.

Each frame is one JSON object ``{"Type": "new"|"update"|"delete"|"prune"|"truncate"|"stats", "Data": …}`` taken
from the capture store's event hub. A client that does not keep up (``MAX_BACKLOG`` frames waiting) is
disconnected with 1013 rather than letting its backlog grow without bound; the UI reconnects and reloads.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_BACKLOG = 1000


async def endpoint(ws: WebSocket) -> None:
    ctx = ws.app.state.ctx
    await ws.accept()
    hub = ctx.hub
    if hub is None:  # no capture store: nothing will ever happen; keep the socket open until the client leaves
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            return
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(MAX_BACKLOG)

    def on_event(event: dict[str, Any]) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            queue._queue.clear()  # type: ignore[attr-defined]  # drop the backlog, then tell the writer
            queue.put_nowait(None)

    hub.subscribe(on_event)

    async def reader() -> None:
        try:
            while True:
                await ws.receive_text()  # Mailpit's UI sends nothing; we only watch for the close
        except WebSocketDisconnect:
            pass

    read_task = asyncio.create_task(reader())
    try:
        while not read_task.done():
            get = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({get, read_task}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                break
            event = get.result()
            if event is None:
                await ws.close(1013)
                break
            await ws.send_text(json.dumps(event, ensure_ascii=False))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(on_event)
        read_task.cancel()
