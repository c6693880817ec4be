"""``RequestGuard``: the inspector's defence against other web sites (pure ASGI middleware, HTTP and WebSocket).

The attack. The inspector listens on loopback without a password, and a browser on the same machine will carry
requests there for any page it shows:

- cross-site requests: a page's form or ``fetch(…, {mode: "no-cors"})`` POSTs ``text/plain`` to ``/api/v1/send``
  or ``/release`` (an open relay with a forged From), or opens ``ws://127.0.0.1:8025/api/events`` (WebSockets are
  not covered by the same-origin policy) and reads every captured message as it arrives;
- DNS rebinding: ``evil.example`` first resolves to the attacker, then to 127.0.0.1; the page, now "same-origin"
  with the inspector, reads the whole API.

The defence, in this order:

1. Host (DNS rebinding). The ``Host`` header must name this server: a loopback name (``localhost``, ``*.localhost``,
   RFC 6761 §6.3) or address, ``hostname``, a listen address, the address the connection came in on, a local
   domain and its ``autoconfig.``, ``autodiscover.`` and ``mta-sts.`` names (client set-up, web/wellknown.py), or
   ``[http] allowed_hosts``. Anything else: 421 Misdirected Request (RFC 9110 §15.5.20). A rebound name never passes,
   whatever it resolves to.
2. Origin (cross-site requests). A state-changing request (POST, PUT, PATCH, DELETE) or a WebSocket handshake whose
   ``Origin`` (RFC 6454) is neither this server's own (same host and port as the ``Host`` header) nor in
   ``[http] allowed_origins``: 403, whatever its Content-Type. Browsers send ``Origin`` on every such request;
   without one, a browser's ``Sec-Fetch-Site: cross-site``/``same-site`` is refused the same way. Clients that are
   no browser (curl, Mailpit client libraries) send neither and pass.
3. CORS (``cors``): the origins of ``allowed_origins`` get CORS answers, preflight included (Starlette's
   ``CORSMiddleware``); credentials only for origins named one by one, never for ``*``.

JSON endpoints refuse any other Content-Type with 415 (``api.common.json_body``), so even an allowed origin cannot
send a "simple" cross-site request that skips the CORS preflight.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from courrier import log
from courrier.config import Config

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORT = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str) -> tuple[str, int | None] | None:
    """``Host`` header → (lower-case name or address without brackets, port or None); None when malformed."""
    v = value.strip().lower()
    if not v or any(c in v for c in "/?#@ \\") or not v.isascii():
        return None
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return None
        name, rest = v[1:end], v[end + 1:]
    else:
        name, _, port = v.partition(":")
        rest = f":{port}" if port else ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
        return None
    return name.rstrip("."), int(rest[1:]) if rest else None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class RequestGuard:
    """Host check, then Origin check, before anything else of the app runs (see the module docstring)."""

    def __init__(self, app: ASGIApp, cfg: Config) -> None:
        self.app = app
        self.any_host = "*" in cfg.http.allowed_hosts
        names = {"localhost", cfg.hostname.lower(), *cfg.http.allowed_hosts}
        for d in cfg.domains:  # client set-up names (web/wellknown.py): autoconfig, autodiscover, MTA-STS policy
            names |= {d, f"autoconfig.{d}", f"autodiscover.{d}", f"mta-sts.{d}"}
        for a in cfg.listen.http:
            names.add(a.host.lower().strip("[]"))
        self.names = {str(ip) if (ip := _ip(n)) else n for n in names}
        self.any_origin = "*" in cfg.http.allowed_origins
        self.origins = set(cfg.http.allowed_origins) - {"*"}

    # ------------------------------------------------------------------ checks

    def host_ok(self, host: str | None, scope: Scope) -> bool:
        if host is None or self.any_host:  # no Host: HTTP/1.0, no browser (HTTP/1.1 requires it, RFC 9112 §3.2)
            return True
        parsed = split_host(host)
        if parsed is None:
            return False
        name = parsed[0]
        ip = _ip(name)
        if ip is not None:
            local = (scope.get("server") or ("", 0))[0]
            return ip.is_loopback or str(ip) in self.names or (_ip(local or "") == ip)
        return name in self.names or name.endswith(".localhost")

    def origin_ok(self, origin: str, host: str | None, scope: Scope) -> bool:
        o = origin.strip().lower().rstrip("/")
        if self.any_origin or o in self.origins:
            return True
        if o == "null" or host is None:  # opaque origins (sandboxed frames, file:, data:) are nobody's
            return False
        try:
            u = urlsplit(o)
            o_port = u.port or _DEFAULT_PORT.get(u.scheme)
        except ValueError:
            return False
        parsed = split_host(host)
        if u.scheme not in ("http", "https") or parsed is None or u.hostname is None:
            return False
        # Same origin: the page was served by this server under the (already checked) Host name and port. The
        # scheme may differ (TLS ended by a reverse proxy): no other server can answer on the same host and port.
        h_name, h_port = parsed
        h_port = h_port or _DEFAULT_PORT["https" if scope.get("scheme") in ("https", "wss") else "http"]
        return u.hostname.strip("[]").rstrip(".") == h_name and o_port == h_port

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        host = headers.get("host")
        if not self.host_ok(host, scope):
            log.event("http.refused", reason="host", host=(host or "")[:100], path=scope.get("path", "")[:100])
            await deny(scope, receive, send, 421, "unknown Host: this server does not answer to that name "
                                                  "(add it to [http] allowed_hosts)")
            return
        if scope["type"] == "websocket" or scope.get("method", "GET").upper() in STATE_CHANGING:
            origin = headers.get("origin")
            fetch_site = headers.get("sec-fetch-site", "").lower()
            if origin is not None:
                allowed = self.origin_ok(origin, host, scope)
            else:
                allowed = fetch_site not in ("cross-site", "same-site") or self.any_origin
            if not allowed:
                log.event("http.refused", reason="origin", origin=(origin or fetch_site)[:100],
                          path=scope.get("path", "")[:100])
                await deny(scope, receive, send, 403, "cross-site request refused: the Origin is neither this "
                                                      "server nor in [http] allowed_origins")
                return
        await self.app(scope, receive, send)


async def deny(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    """An HTTP error before the app runs; for a WebSocket handshake, that same HTTP answer (ASGI "WebSocket Denial
    Response") when the server supports it, else a close before accept (uvicorn answers 403)."""
    from courrier.web.asgi import error_response

    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        body = text.encode()
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await error_response(scope.get("path", ""), status, text)(scope, receive, send)


def cors(app: ASGIApp, cfg: Config) -> ASGIApp:
    """CORS answers (preflight and actual) for ``[http] allowed_origins``; the app as is when there are none."""
    origins = list(cfg.http.allowed_origins)
    if not origins:
        return app
    return CORSMiddleware(app, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                          allow_headers=["Content-Type", "Authorization"], allow_credentials="*" not in origins,
                          max_age=600)
