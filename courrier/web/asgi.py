"""The inspector as one ASGI application: routes, access control, error shapes, the UI and the OpenAPI document.

Error shapes follow the audience: Mailpit endpoints answer plain text with a 4xx (what its spec gives, and what
Mailpit clients parse), courrier-only endpoints under ``/api/courrier/`` answer ``{"Error": "…"}`` JSON, and so do
the Mailpit endpoints' refusals of bad input values that Mailpit itself answers in JSON (``JSONError``: a search it
cannot run, a missing JSON body, the send API).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from courrier import __version__
from courrier.auth import Limited
from courrier.web.auth import Principal
from courrier.web.context import WebContext

OPEN_PATHS = ("/livez", "/readyz", "/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml",
              "/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/.well-known/mta-sts.txt")
COURRIER_PREFIX = "/api/courrier/"


class JSONError(HTTPException):
    """An HTTP error answered as ``{"Error": detail}`` on every path (Mailpit's JSONErrorResponse)."""


class AccessControl:
    """ASGI middleware: HTTP basic auth (and admin accounts in server mode) before any route, WebSockets included."""

    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self._resolve_client(scope)
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not self.ctx.auth.required:  # capture mode without auth_file: loopback-only by default (check_bind)
            scope.setdefault("state", {})["principal"] = Principal("", "open")
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ip = (scope.get("client") or ("", 0))[0]
        try:
            principal = await self.ctx.auth.authenticate(headers.get("authorization"), ip)
        except Limited:  # the shared login limiter: not checked, try later
            await self._deny(scope, receive, send, 429, "too many failed logins, try later")
            return
        if principal is None:
            await self._deny(scope, receive, send, 401, "authentication required")
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def _resolve_client(self, scope: Scope) -> None:
        """Behind a trusted reverse proxy, ``scope["client"]`` becomes the address X-Forwarded-For names
        (``[http] trusted_proxies``), so limits and logs downstream see the real client."""
        peer, port = scope.get("client") or ("", 0)
        xff = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-for"]
        client = self.ctx.auth.client_ip(peer, xff)
        if client != peer:
            scope["client"] = (client, port)

    async def _deny(self, scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        realm = {"WWW-Authenticate": 'Basic realm="courrier", charset="UTF-8"'} if status == 401 else {}
        resp = error_response(scope["path"], status, text, realm)
        await resp(scope, receive, send)


def error_response(path: str, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    if path.startswith(COURRIER_PREFIX):
        return JSONResponse({"Error": text}, status, headers=headers)
    return PlainTextResponse(text, status, headers=headers)


def build(ctx: WebContext) -> ASGIApp:
    """The ASGI app for one WebContext (no module-level state: tests build as many as they like)."""
    from courrier.web import events
    from courrier.web.api import auth as auth_api
    from courrier.web.api import courrier as courrier_api
    from courrier.web.api import info, message, messages, search, send, tags, ui, view, wait

    api = FastAPI(title="courrier", version=__version__, openapi_url="/api/openapi.json", docs_url=None,
                  redoc_url=None, description="Mailpit-compatible API v1 (see shared/CONTRACT.md) and "
                  "courrier's own endpoints under /api/courrier/. In server mode (admin accounts only) the list, "
                  "search, bulk read/delete, `latest` and /api/events act on the mailbox named by "
                  "`?mailbox=ACCOUNT/FOLDER` (default: your own INBOX); message IDs name their mailbox.")
    api.state.ctx = ctx

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if isinstance(exc, JSONError):
            return JSONResponse({"Error": str(exc.detail)}, exc.status_code, headers=exc.headers)
        return error_response(request.url.path, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error_response(request.url.path, 400, f"{where}: {first.get('msg', 'invalid request')}".strip(": "))

    @api.get("/livez", include_in_schema=False)
    async def livez() -> Response:
        return PlainTextResponse("ok")

    @api.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if not ctx.ready:
            return PlainTextResponse("shutting down", 503)
        return PlainTextResponse("ok")

    from courrier.web import metrics, wellknown

    for mod in (info, messages, message, search, send, tags, view, ui, wait, auth_api, courrier_api, metrics, wellknown):
        api.include_router(mod.router)
    # Mailpit endpoints added in the second turn (issue 13)
    from courrier.web.api import chaos, checks, swagger, thumb

    for mod in (chaos, swagger, thumb, checks):
        api.include_router(mod.router)
    api.add_api_websocket_route("/api/events", events.endpoint)

    static = resources.files("courrier.web") / "static"
    api.mount("/static", StaticFiles(directory=str(static)), name="static")

    index_html = (static / "index.html").read_bytes()

    @api.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(index_html, media_type="text/html; charset=utf-8", headers=UI_HEADERS)

    # Outermost first: Host and Origin (guard.py), CORS for [http] allowed_origins (preflights carry no
    # credentials, so before auth), then authentication, then the routes.
    from courrier.web.guard import RequestGuard, cors

    return RequestGuard(cors(AccessControl(metrics.Timing(api, ctx), ctx), ctx.cfg), ctx.cfg)


# The UI itself: our own script only, nothing remote, not frameable by other sites.
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def ctx_of(request: Any) -> WebContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def json_ok(data: Any) -> Response:
    """JSON as UTF-8; a stray surrogate (an undecodable octet of a hostile header) becomes "?", never a 500."""
    return Response(json.dumps(data, ensure_ascii=False).encode("utf-8", "replace"), media_type="application/json")
