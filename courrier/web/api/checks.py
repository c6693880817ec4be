"""Mailpit's message checks: ``/api/v1/message/{ID}/link-check``, ``/html-check`` (and ``/sa-check``).

Each reads the stored message (``latest`` allowed, not marked read) and hands its bodies to a checker of the
capture layer; this module only shapes Mailpit's JSON (``server/apiv1/other.go``). The link checker (its cache and
connection bound) is made once per application, on first use.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.capture import htmlcheck
from courrier.capture.linkcheck import LinkChecker
from courrier.capture.records import Message
from courrier.web.api.common import ctx, not_found, resolve_or_404, source
from courrier.web.asgi import json_ok

router = APIRouter(tags=["other"])


async def _message(request: Request, msg_id: str) -> Message:
    real = await resolve_or_404(request, msg_id)
    msg = await source(request).message(real)
    if msg is None:
        raise not_found()
    return msg


def _link_checker(request: Request) -> LinkChecker:
    state = request.app.state
    checker = getattr(state, "link_checker", None)
    if checker is None:
        checker = state.link_checker = LinkChecker(allow_internal=ctx(request).cfg.capture.link_check_internal)
    return checker


@router.get("/api/v1/message/{ID}/link-check", summary="Link check")
async def link_check(request: Request, ID: str) -> Response:  # noqa: N803
    msg = await _message(request, ID)
    follow = request.query_params.get("follow", "") in ("true", "1")
    errors, links = await _link_checker(request).check(msg.html, msg.text, follow)
    return json_ok({"Errors": errors,
                    "Links": [{"URL": x.url, "StatusCode": x.status_code, "Status": x.status} for x in links]})


@router.get("/api/v1/message/{ID}/html-check", summary="HTML check")
async def html_check(request: Request, ID: str) -> Response:  # noqa: N803
    msg = await _message(request, ID)
    if not msg.html:
        raise HTTPException(400, "message does not contain HTML")
    return json_ok(await asyncio.to_thread(htmlcheck.check, msg.html))
