"""Helpers shared by the API modules: the context, request bodies, query integers, 400/404 the Mailpit way."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from courrier.web.asgi import JSONError
from courrier.web.context import WebContext
from courrier.web.mailview import MailboxView
from courrier.web.source import MessageSource

MAILBOX_PARAM = "mailbox"

MAX_JSON_BODY = 32 << 20  # /api/v1/send carries base64 attachments
MAX_LIMIT = 5000
MAX_START = 1 << 40  # beyond any mailbox; keeps ``start`` inside SQLite's 64-bit OFFSET


def ctx(request: Request) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def source(request: Request) -> MessageSource:
    """Where this request's messages come from: the capture store, or (server mode) the mailbox chosen with
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
    return src


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
    """A non-negative integer query parameter, at most ``maximum`` (a larger one is read as ``maximum``)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 40 or not raw.isascii() or not raw.strip().lstrip("+-").isdigit():
        raise HTTPException(400, f"{name}: expected an integer, got {raw[:40]!r}")
    v = int(raw)
    if v < 0:
        raise HTTPException(400, f"{name}: must not be negative")
    return min(v, maximum)


async def resolve_or_404(request: Request, msg_id: str) -> str:
    """The message's ID (``latest`` resolved), or 404 as Mailpit answers."""
    real = await source(request).resolve(msg_id)
    if real is None:
        raise HTTPException(404, "message not found")
    return real


def not_found(what: str = "message") -> HTTPException:
    return HTTPException(404, f"{what} not found")
