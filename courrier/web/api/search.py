"""``/api/v1/search``: Mailpit's search syntax over the capture index (FTS5), and delete-by-search."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.api import mailpit
from courrier.web.api.common import MAX_LIMIT, before_param, int_param, ok, source
from courrier.web.asgi import JSONError, json_ok
from courrier.web.store import SearchError

router = APIRouter(tags=["messages"])


def _query(request: Request) -> str:
    q = request.query_params.get("query", "").strip()
    if not q:
        raise HTTPException(400, "no search query")
    return q


@router.get("/api/v1/search", summary="Search messages")
async def search(request: Request) -> Response:
    q = _query(request)
    start = int_param(request, "start", 0)
    limit = int_param(request, "limit", 50, MAX_LIMIT)
    try:
        page = await source(request).page(q, start, limit, request.query_params.get("tz"),
                                          before_param(request))
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return json_ok(mailpit.page(page))


@router.delete("/api/v1/search", summary="Delete messages by search")
async def delete_search(request: Request) -> Response:
    q = _query(request)
    try:
        await source(request).delete_search(q, request.query_params.get("tz"))
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return ok()
