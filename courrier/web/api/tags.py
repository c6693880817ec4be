"""``/api/v1/tags``: Mailpit's tags — list, set on messages, rename, delete.

In server mode tags are the IMAP keywords of the selected mailbox's messages (``?mailbox=``), so mail clients see
them too; rename and delete act on that mailbox.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.web.api.common import json_body, ok, source, str_list
from courrier.web.asgi import JSONError, json_ok
from courrier.web.store import SearchError

router = APIRouter(tags=["tags"])


@router.get("/api/v1/tags", summary="Get all current tags")
async def get_tags(request: Request) -> Response:
    return json_ok(await source(request).tags())


@router.put("/api/v1/tags", summary="Set message tags")
async def set_tags(request: Request) -> Response:
    data = await json_body(request, required=True)
    ids, tags = str_list(data, "IDs"), str_list(data, "Tags")
    if ids is None or tags is None:
        raise HTTPException(400, "IDs and Tags are required")
    try:
        await source(request).set_tags(ids, [t.strip() for t in tags if t.strip()])
    except SearchError as e:  # server mode: tags are IMAP keywords, which have a syntax
        raise JSONError(400, str(e)) from None
    return ok()


@router.put("/api/v1/tags/{Tag}", summary="Rename a tag")
async def rename_tag(request: Request, Tag: str) -> Response:  # noqa: N803
    data = await json_body(request, required=True)
    name = data.get("Name")
    if not isinstance(name, str) or not name.strip():
        raise HTTPException(400, "Name: a new tag name is required")
    try:
        await source(request).rename_tag(Tag, name.strip())
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return ok()


@router.delete("/api/v1/tags/{Tag}", summary="Delete a tag")
async def delete_tag(request: Request, Tag: str) -> Response:  # noqa: N803
    await source(request).delete_tag(Tag)
    return ok()
