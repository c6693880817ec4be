"""``GET /metrics``: Prometheus text format 0.0.4 (OpenMetrics when the scraper's Accept asks for it).

The numbers come from the server's ``observe.Observer`` (counted from the log events). The route sits behind the
same authentication as the API (an admin account in server mode, the auth file in capture mode), and
``[http] metrics = false`` removes it (404). A sync handler: reading the queue's size is a SQLite query, which runs
in the thread pool, not on the event loop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from courrier.web.asgi import ctx_of

if TYPE_CHECKING:
    from courrier.web.context import WebContext

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    c = ctx_of(request)
    if not c.cfg.http.metrics or c.observer is None:
        raise HTTPException(404, "metrics are disabled ([http] metrics = false)")
    body, content_type = c.observer.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)


class Timing:
    """ASGI middleware around the routes: each HTTP request's duration into the observer's histogram, labelled by
    the matched route's template (unmatched paths share one label), so a scan of random URLs adds no series."""

    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        observer = self.ctx.observer
        if scope["type"] != "http" or observer is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(other)"
            observer.http.labels(scope.get("method", ""), route).observe(time.perf_counter() - start)
