"""``/api/v1/messages``: list (newest first), set read status, delete — Mailpit's ``messages`` resource."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.api import mailpit
from courrier.web.api.common import MAX_LIMIT, before_param, int_param, json_body, ok, source, str_list
from courrier.web.asgi import JSONError, json_ok
from courrier.web.store import SearchError

router = APIRouter(tags=["messages"])


@router.get("/api/v1/messages", summary="List messages")
async def list_messages(request: Request) -> Response:
    start = int_param(request, "start", 0)
    limit = int_param(request, "limit", 50, MAX_LIMIT)
    return json_ok(mailpit.page(await source(request).page(None, start, limit, before=before_param(request))))


@router.put("/api/v1/messages", summary="Set read status")
async def set_read(request: Request) -> Response:
    data = await json_body(request, required=True)  # an empty body is no "mark everything unread" (400, as Mailpit)
    ids = str_list(data, "IDs")
    read = data.get("Read", False)
    if not isinstance(read, bool):
        raise HTTPException(400, "Read: expected true or false")
    search = data.get("Search")
    if search is not None and not isinstance(search, str):
        raise HTTPException(400, "Search: expected a string")
    if ids and search:  # Mailpit's SetReadStatus (server/apiv1/messages.go)
        raise HTTPException(400, "You may specify either IDs or a search query, not both")
    try:
        await source(request).set_read(ids or None, read, search or None, request.query_params.get("tz"))
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return ok()


@router.delete("/api/v1/messages", summary="Delete messages")
async def delete_messages(request: Request) -> Response:
    data = await json_body(request)
    ids = str_list(data, "IDs")
    await source(request).delete(ids or None)
    return ok()
