"""``/api/v1/message/{ID}…``: one message — summary, headers, source, parts, and release to the outbound path.

``ID`` may be ``latest``. As in Mailpit, reading the message summary marks it read.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from courrier import log
from courrier.web.api import mailpit
from courrier.web.api.common import ctx, json_body, not_found, ok, resolve_or_404, source, str_list
from courrier.web.asgi import json_ok
from courrier.web.relay import RecipientError, RelayError, check_recipients, release_copy

router = APIRouter(tags=["message"])

# An attachment is untrusted content served from our origin: it must never run as a page of the inspector.
PART_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


@router.get("/api/v1/message/{ID}", summary="Get message summary")
async def get_message(request: Request, ID: str) -> Response:  # noqa: N803 (Mailpit's parameter name)
    src = source(request)
    msg_id = await resolve_or_404(request, ID)
    msg = await src.message(msg_id)
    if msg is None:
        raise not_found()
    if not msg.summary.read:
        await src.set_read([msg_id], True)
        msg = replace(msg, summary=replace(msg.summary, read=True))  # as it is now, for the legacy ``Read``
    return json_ok(mailpit.message(msg))


@router.get("/api/v1/message/{ID}/headers", summary="Get message headers")
async def get_headers(request: Request, ID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    headers = await source(request).headers(msg_id)
    if headers is None:
        raise not_found()
    canonical = {"-".join(w[:1].upper() + w[1:].lower() for w in k.split("-")): v for k, v in headers.items()}
    return json_ok(dict(sorted(canonical.items())))


@router.get("/api/v1/message/{ID}/raw", summary="Get message source")
async def get_raw(request: Request, ID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    raw = await source(request).raw(msg_id)
    if raw is None:
        raise not_found()
    headers = {"X-Content-Type-Options": "nosniff"}
    if request.query_params.get("dl") == "1":  # a download, named as Mailpit names it (server/apiv1/message.go)
        headers["Content-Disposition"] = f'attachment; filename="{msg_id}.eml"'
    return Response(raw, media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/api/v1/message/{ID}/part/{PartID}", summary="Get message attachment")
async def get_part(request: Request, ID: str, PartID: str) -> Response:  # noqa: N803
    msg_id = await resolve_or_404(request, ID)
    got = await source(request).part(msg_id, PartID)
    if got is None:
        raise not_found("part")
    ctype, fname, data = got
    headers = part_headers(ctype, fname)
    if headers["Content-Disposition"].startswith("attachment"):
        ctype = "application/octet-stream"
    elif ctype.startswith("text/"):
        ctype += "; charset=utf-8"
    return Response(data, media_type=ctype, headers=headers)


def part_headers(ctype: str, fname: str) -> dict[str, str]:
    """Mailpit's ``DownloadAttachment`` (server/apiv1/message.go): ``inline; filename="…"`` (the name already
    falls back to the Content-ID), but a type a browser would run as a page (HTML, XML, SVG) is sent as an
    ``attachment``. A name outside ASCII also gets RFC 6266 §4.3's ``filename*``."""
    disposition = "attachment" if ctype.split(";", 1)[0].strip().lower() in _ACTIVE else "inline"
    value = f'{disposition}; filename="{quote(fname, safe=_SAFE)}"'
    if not fname.isascii():
        value += f"; filename*=UTF-8''{quote(fname)}"
    return {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": PART_CSP, "Content-Disposition": value}


_ACTIVE = {"text/html", "text/xml", "application/xhtml+xml", "image/svg+xml", "application/xml", "text/xsl"}
_SAFE = " !#$&'()*+,-./:;=?@[]^_`{|}~"  # URL path escaping as Go's url.PathEscape, keeping the name readable


def _recipients(request: Request, data: dict) -> list[str]:
    """The release's recipients, checked as submission's (``relay.check_recipients``); 400 for any refused one."""
    cfg = ctx(request).cfg
    try:
        return check_recipients(str_list(data, "To") or [], max_recipients=cfg.limits.max_recipients,
                                allowed=cfg.capture.release_allowed)
    except RecipientError as e:
        raise HTTPException(400, str(e)) from None


@router.post("/api/v1/message/{ID}/release", summary="Release message")
async def release(request: Request, ID: str) -> Response:  # noqa: N803
    c = ctx(request)
    rcpts = _recipients(request, await json_body(request, required=True))
    src = source(request)
    msg_id = await resolve_or_404(request, ID)
    if c.relay is None:
        raise HTTPException(400, "message relaying is not available on this server")
    raw, env, msg = await src.raw(msg_id), await src.envelope(msg_id), await src.message(msg_id)
    if raw is None or msg is None:
        raise not_found()
    # The envelope sender it was captured with; a bounce-style null sender falls back to the header From.
    sender = (env.mail_from if env else "") or msg.summary.from_.address
    try:
        await c.relay(msg_id, sender, rcpts, release_copy(raw))
    except RelayError as e:
        log.event("http.release_failed", level="warn", id=msg_id, error=str(e))
        return PlainTextResponse(str(e), 400)
    return ok()
