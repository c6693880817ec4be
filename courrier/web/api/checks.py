"""Mailpit's message checks: ``/api/v1/message/{ID}/link-check``, ``/html-check`` and ``/sa-check``.

Each reads the stored message (``latest`` allowed, not marked read) and hands it to a checker of a lower layer —
``capture/linkcheck.py``, ``capture/htmlcheck.py``, and for spamd the inbound filter's client
(``filter/spamd.py``); this module only shapes Mailpit's JSON (``server/apiv1/other.go``). The link checker (its
cache and connection bound) is made once per application, on first use.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from courrier.capture import htmlcheck
from courrier.capture.linkcheck import LinkChecker
from courrier.capture.records import Message
from courrier.filter import spamd
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


SPAM_SCORE = 5.0  # Mailpit's fixed spamScore: IsSpam is judged on it, not on spamd's required_score


@router.get("/api/v1/message/{ID}/sa-check", summary="SpamAssassin check")
async def sa_check(request: Request, ID: str) -> Response:  # noqa: N803
    """Mailpit's ``SpamAssassinCheck`` (``internal/spamassassin/spamassassin.go``): spamd's REPORT of the raw
    message as {IsSpam, Error, Score, Rules}; scores floored to one decimal. spamd unreachable or failing is an
    ``Error`` in a 200 answer, as Mailpit; no ``[capture] spamassassin`` is a 400. Messages over spamc's own size
    limit are not sent (``Error`` says so)."""
    address = ctx(request).cfg.capture.spamassassin
    real = await resolve_or_404(request, ID)
    raw = await source(request).raw(real)
    if raw is None:
        raise not_found()
    if address is None:
        raise HTTPException(400, "no SpamAssassin service defined")
    out: dict[str, Any] = {"IsSpam": False, "Error": "", "Score": 0.0, "Rules": None}
    if len(raw) > spamd.MAX_SCAN_SIZE:
        out["Error"] = f"not scanned: {len(raw)} octets is over {spamd.MAX_SCAN_SIZE} (spamc's limit)"
        return json_ok(out)
    try:
        rep = await spamd.report(address, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    except spamd.SpamdError as e:
        out["Error"] = str(e)
        return json_ok(out)
    out.update(IsSpam=rep.result.score >= SPAM_SCORE, Score=_floor1(rep.result.score),
               Rules=[{"Score": _floor1(r.points), "Name": r.name, "Description": r.description} for r in rep.rules])
    return json_ok(out)


def _floor1(n: float) -> float:
    """Mailpit's ``round1dm``: floored, not rounded, to one decimal."""
    return math.floor(n * 10) / 10
