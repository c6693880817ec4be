"""Helpers shared by the API modules: the context, request bodies, query integers, 400/404 the Mailpit way."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from courrier.capture.search import parse_when
from courrier.web.asgi import JSONError
from courrier.web.context import WebContext
from courrier.web.mailview import MailboxView
from courrier.web.source import MessageSource
from courrier.web.store import SearchError

MAILBOX_PARAM = "mailbox"

MAX_MAILBOX_NAME = 320  # an address: 64 octets of local part, @, 255 of domain (RFC 5321 §4.5.3.1)
MAX_JSON_BODY = 32 << 20  # /api/v1/send carries base64 attachments
MAX_LIMIT = 5000
MAX_START = 1 << 40  # beyond any mailbox; keeps ``start`` inside SQLite's 64-bit OFFSET


def ctx(request: Request) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def source(request: Request) -> MessageSource:
    """Where this request's messages come from: the capture store — restricted to one capture mailbox (an envelope
    recipient or SMTP AUTH user) with ``?mailbox=NAME`` —, or (server mode) the mailbox chosen with
    ``?mailbox=account/folder`` — by default the logged-in admin account's own INBOX."""
    c = ctx(request)
    if c.mailboxes is not None:
        principal = request.scope.get("state", {}).get("principal")
        own = principal.user if principal is not None and principal.source == "account" else None
        return MailboxView(c.mailboxes, request.query_params.get(MAILBOX_PARAM), own)
    src = c.source
    if src is None:
        raise HTTPException(400, "no captured mail here: this server runs without a capture store "
                                 "(start it with `courrier serve --capture`)")
    mailbox = request.query_params.get(MAILBOX_PARAM, "")[:MAX_MAILBOX_NAME]
    return src.within(mailbox) if mailbox.strip() else src


def ok() -> Response:
    return PlainTextResponse("ok")


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type (RFC 6839 §3.1), parameters (charset) allowed."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def json_body(request: Request, *, required: bool = False) -> dict[str, Any]:
    """The request's JSON object ({} when empty and not required); 400 on bad JSON or a non-object.

    A body sent with another Content-Type is refused with 415 before it is read: an HTML form or a "simple"
    cross-site fetch (text/plain, form types) cannot reach a JSON endpoint without a CORS preflight (guard.py).
    No Content-Type at all is read as JSON (no browser sends a body without one)."""
    ctype = request.headers.get("content-type")
    has_body = request.headers.get("content-length", "0").strip() not in ("", "0") or \
        "transfer-encoding" in request.headers
    if ctype is not None and has_body and not is_json(ctype):
        raise HTTPException(415, f"Content-Type must be application/json, not {ctype[:60]!r}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY:
            raise HTTPException(413, "request body too large")
    if not body.strip():
        if required:
            raise JSONError(400, "missing JSON body")
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPException(400, f"invalid JSON: {e}") from None
    except RecursionError:  # [[[[…]]]] nested beyond the interpreter's stack
        raise HTTPException(400, "invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "expected a JSON object")
    return data


def str_list(data: dict[str, Any], key: str) -> list[str] | None:
    v = data.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise HTTPException(400, f"{key}: expected an array of strings")
    return v


def int_param(request: Request, name: str, default: int, maximum: int = MAX_START) -> int:
    """A non-negative integer query parameter, at most ``maximum``. An unparsable or negative value falls back to
    ``default``, as Mailpit's ``getStartLimit`` (server/apiv1/api.go) does: clients sending ``limit=`` or
    ``start=-1`` get a page, not an error."""
    raw = request.query_params.get(name, "").strip()
    if not raw or len(raw) > 40 or not raw.isascii() or not raw.lstrip("+").isdigit():
        return default
    return min(int(raw), maximum)


def before_param(request: Request) -> float | None:
    """``?before=DATE``: only messages strictly older (Mailpit's pagination by time); a date it cannot read is
    ignored, as Mailpit logs and ignores it."""
    raw = request.query_params.get("before", "").strip()
    if not raw:
        return None
    try:
        return parse_when(raw[:100])
    except ValueError:
        return None


async def latest_or_search(request: Request) -> str | None:
    """``latest``: the newest message, or with ``?query=`` the newest matching it (Mailpit's ``storage.LatestID``)."""
    q = request.query_params.get("query", "").strip()
    src = source(request)
    if not q:
        return await src.resolve("latest")
    try:
        page = await src.page(q, 0, 1, request.query_params.get("tz"))
    except SearchError as e:
        raise JSONError(400, str(e)) from None
    return page.messages[0].id if page.messages else None


async def resolve_or_404(request: Request, msg_id: str) -> str:
    """The message's ID (``latest`` resolved), or 404 as Mailpit answers."""
    real = await latest_or_search(request) if msg_id == "latest" else await source(request).resolve(msg_id)
    if real is None:
        raise HTTPException(404, "message not found")
    return real


def not_found(what: str = "message") -> HTTPException:
    return HTTPException(404, f"{what} not found")
