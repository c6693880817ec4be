"""The inspector's own URLs, so a message or a search can be linked to, bookmarked and reopened after a reload.

``/view/{ID}`` and ``/search?q=…`` serve the same page as ``/``: the script (``static/app.js``) reads the address
and opens the message or runs the search. ``/view/latest`` is answered here, as Mailpit does, with an HTTP redirect
(302) to ``/view/<ID>`` of the newest message — or of the newest one matching ``?query=`` — so a test can open
"what was just sent" without knowing its ID. ``/view/{ID}.html`` and ``.txt`` (``view.py``) are registered first
and keep their meaning.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from courrier.web.api.common import source
from courrier.web.asgi import UI_HEADERS, JSONError
from courrier.web.store import SearchError

router = APIRouter(include_in_schema=False)
_INDEX = (resources.files("courrier.web") / "static" / "index.html").read_bytes()


def index_page() -> Response:
    return Response(_INDEX, media_type="text/html; charset=utf-8", headers=UI_HEADERS)


async def _latest(request: Request, query: str) -> str | None:
    src = source(request)
    if not query:
        return await src.resolve("latest")
    try:
        page = await src.page(query, 0, 1, request.query_params.get("tz"))
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return page.messages[0].id if page.messages else None


@router.get("/view/latest")
async def view_latest(request: Request) -> Response:
    msg_id = await _latest(request, request.query_params.get("query", "").strip())
    if msg_id is None:
        raise HTTPException(404, "message not found")
    mailbox = request.query_params.get("mailbox")
    return RedirectResponse(f"/view/{quote(msg_id, safe='')}" + (f"?mailbox={quote(mailbox)}" if mailbox else ""),
                            302)


@router.get("/view/{ID}")
async def view_page(ID: str) -> Response:  # noqa: N803
    return index_page()


@router.get("/search")
async def search_page() -> Response:
    return index_page()
