"""``/view/{ID}.html`` and ``/view/{ID}.txt``: one message's HTML or text part, for UI integration tests.

As in Mailpit, the HTML is the message's own (inline ``cid:`` images pointed at the part endpoint); ``?embed=1``
makes links open in a new window. It is served sandboxed (``sanitize.VIEW_CSP``: CSP ``sandbox``, no script, no
form submission) and without ``<meta http-equiv="refresh">``.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from courrier.capture.records import Message
from courrier.web import sanitize
from courrier.web.api.common import not_found, resolve_or_404, source

router = APIRouter(tags=["testing"])
_A_TAG = re.compile(r"<a\s", re.I)


def cid_urls(msg: Message, msg_id: str) -> dict[str, str]:
    """{Content-ID: part URL} for the message's parts, so ``cid:`` references resolve (RFC 2392)."""
    return {a.content_id: f"/api/v1/message/{msg_id}/part/{a.part_id}"
            for a in msg.inline + msg.attachments if a.content_id}


@router.get("/view/{ID}.html", summary="Render message HTML part")
async def view_html(request: Request, ID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    msg = await source(request).message(msg_id)
    if msg is None:
        raise not_found()
    if not msg.html:
        raise HTTPException(404, "HTML part not found")
    html = sanitize.drop_meta_refresh(sanitize.rewrite_cids(msg.html, cid_urls(msg, msg_id)))
    if request.query_params.get("embed") == "1":
        html = _A_TAG.sub('<a target="_blank" rel="noreferrer noopener" ', html)
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": sanitize.VIEW_CSP, "X-Content-Type-Options": "nosniff"})


@router.get("/view/{ID}.txt", summary="Render message text part")
async def view_text(request: Request, ID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    msg = await source(request).message(msg_id)
    if msg is None:
        raise not_found()
    return PlainTextResponse(msg.text)
