"""``GET /metrics``: Prometheus text format 0.0.4 (OpenMetrics when the scraper's Accept asks for it).

The numbers come from the server's ``observe.Observer`` (counted from the log events). The route sits behind the
same authentication as the API (an admin account in server mode, the auth file in capture mode), and
``[http] metrics = false`` removes it (404). A sync handler: reading the queue's size is a SQLite query, which runs
in the thread pool, not on the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.asgi import ctx_of

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    c = ctx_of(request)
    if not c.cfg.http.metrics or c.observer is None:
        raise HTTPException(404, "metrics are disabled ([http] metrics = false)")
    body, content_type = c.observer.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
