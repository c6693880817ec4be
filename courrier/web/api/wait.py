"""``GET /api/courrier/wait?query=Q&timeout=S``: a long poll, so a test suite waits for its mail instead of polling.

Answers 200 with the newest message matching ``Q`` (Mailpit's search syntax; no query: any message) as a
``MessageSummary`` — at once when one is already there, else as soon as one arrives — or 408 once ``S`` seconds
(default ``DEFAULT_TIMEOUT``, at most ``MAX_TIMEOUT``) have passed without one. It sleeps on the store's events
(capture mode: the event hub; server mode: the selected mailbox's watcher, ``?mailbox=``), re-running the search
only when mail has arrived, and stops early when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from courrier.capture.records import Summary
from courrier.web.api import mailpit
from courrier.web.api.common import ctx, source
from courrier.web.asgi import JSONError, json_ok
from courrier.web.mailview import MailboxView
from courrier.web.store import SearchError

router = APIRouter(prefix="/api/courrier", tags=["courrier"])
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
CHECK_CLIENT = 1.0  # seconds between checks that the client is still there


def _timeout(request: Request) -> float:
    raw = request.query_params.get("timeout", "")
    if raw == "":
        return DEFAULT_TIMEOUT
    try:
        t = float(raw[:40])
    except ValueError:
        raise JSONError(400, f"timeout: expected seconds, got {raw[:40]!r}") from None
    if not math.isfinite(t) or t < 0:
        raise JSONError(400, "timeout: expected a number of seconds, 0 or more")
    return min(t, MAX_TIMEOUT)


async def _newest(src: Any, query: str, tz: str | None) -> Summary | None:
    try:
        page = await src.page(query or None, 0, 1, tz)
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return page.messages[0] if page.messages else None


@router.get("/wait", summary="Wait for a message matching a search (long poll; 408 on timeout)")
async def wait(request: Request) -> Response:
    query = request.query_params.get("query", "").strip()
    tz = request.query_params.get("tz")
    deadline = time.monotonic() + _timeout(request)
    src = source(request)
    arrived = asyncio.Event()

    def on_event(event: dict[str, Any]) -> None:  # on the loop (the hub is bound to it; the watcher runs there)
        if event.get("Type") == "new":
            arrived.set()

    watcher: asyncio.Task[None] | None = None
    hub = ctx(request).hub
    if isinstance(src, MailboxView):
        await src.mailbox()  # no such mailbox: 404 here, not in the watcher
        watcher = asyncio.create_task(src.watch(on_event))
    elif hub is not None:
        hub.subscribe(on_event)
    try:
        while True:
            arrived.clear()  # before the search: mail arriving during it wakes the next wait
            found = await _newest(src, query, tz)
            if found is not None:
                return json_ok(mailpit.summary(found))
            while not arrived.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JSONError(408, f"no message matching {query!r} arrived in time" if query
                                    else "no message arrived in time")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), min(left, CHECK_CLIENT))
                if await request.is_disconnected():
                    return Response(status_code=499)  # nobody to answer (nginx's "client closed request")
                if watcher is not None:
                    # the watcher's first snapshot may postdate a message that came just after our search
                    arrived.set()
    finally:
        if watcher is not None:
            watcher.cancel()
        elif hub is not None:
            hub.unsubscribe(on_event)
