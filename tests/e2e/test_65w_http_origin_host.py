"""Scenario 65w: cross-site requests and DNS rebinding against the inspector (issue 11, item 16), with curl as the
browser's stand-in (it sends exactly the headers a hostile page makes the browser send) and the websockets client.

- A page elsewhere POSTs text/plain to /api/v1/send and /release, or opens /api/events: 403, nothing stored.
- A JSON endpoint given another Content-Type: 415, even without an Origin.
- A rebound host name (curl --resolve evil.example:PORT:127.0.0.1): 421, HTTP and WebSocket alike.
- `[http] allowed_origins` get CORS answers (preflight included); `[http] allowed_hosts` are served.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
import websockets

from tests.e2e.capture_support import send

EVIL = "http://evil.example"
SEND = json.dumps({"From": {"Email": "forged@bank.test"}, "To": [{"Email": "victim@example.test"}],
                   "Subject": "cross-site"})


def curl(*args: str) -> tuple[int, dict[str, str], str]:
    """(status, response headers lower-cased, body) as curl sees them."""
    p = subprocess.run(["curl", "-s", "-D", "-", "-o", "-", "--max-time", "10", *args], capture_output=True,
                       timeout=30)
    head, _, body = p.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, body


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("guard"), listeners=("smtp", "http"), capture=True).start()
    yield s
    s.stop()


def url(srv, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{srv.ports['http']}{path}"


def total(srv) -> int:
    return json.loads(curl(url(srv, "/api/v1/messages"))[2])["total"]


def test_cross_site_writes_are_refused_whatever_the_content_type(srv):
    send(srv.ports["smtp"], ["bob@example.test"], b"Subject: keep\r\n\r\nx\r\n")
    time.sleep(0.2)
    before = total(srv)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/json", "multipart/form-data"):
        for path in ("/api/v1/send", "/api/v1/message/latest/release"):
            status, headers, _ = curl("-X", "POST", "-H", f"Origin: {EVIL}", "-H", f"Content-Type: {ctype}",
                                      "--data-binary", SEND if "send" in path else '{"To":["x@evil.example"]}',
                                      url(srv, path))
            assert status == 403, (ctype, path, status)
            assert "access-control-allow-origin" not in headers
    for method, path, body in (("PUT", "/api/v1/messages", '{"Read":true}'), ("DELETE", "/api/v1/messages", "{}"),
                               ("DELETE", "/api/v1/search?query=keep", ""), ("PUT", "/api/courrier/pause",
                                                                            '{"Paused":true}'),
                               ("PUT", "/api/v1/tags", '{"IDs":[],"Tags":["x"]}'), ("PATCH", "/api/v1/messages", "")):
        status, _, _ = curl("-X", method, "-H", f"Origin: {EVIL}", "-H", "Content-Type: application/json",
                            "--data-binary", body, url(srv, path))
        assert status == 403, (method, path, status)
    # an opaque origin (a sandboxed frame, a data: page) and a browser that sent no Origin but says cross-site
    assert curl("-X", "POST", "-H", "Origin: null", "--data-binary", SEND, url(srv, "/api/v1/send"))[0] == 403
    assert curl("-X", "DELETE", "-H", "Sec-Fetch-Site: cross-site", url(srv, "/api/v1/messages"))[0] == 403
    assert total(srv) == before  # nothing sent, nothing deleted
    assert json.loads(curl(url(srv, "/api/courrier/pause"))[2]) == {"Paused": False}
    # reads stay open to other origins, but without CORS headers the browser does not let the page see them
    status, headers, _ = curl("-H", f"Origin: {EVIL}", url(srv, "/api/v1/messages"))
    assert status == 200 and "access-control-allow-origin" not in headers


def test_json_endpoints_want_json_and_same_origin_and_plain_clients_pass(srv):
    status, _, body = curl("-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", SEND,
                           url(srv, "/api/v1/send"))
    assert status == 415 and "application/json" in json.loads(body)["Error"]
    status, _, _ = curl("-X", "POST", "--data", SEND, url(srv, "/api/v1/send"))  # curl -d: form-urlencoded
    assert status == 415
    status, _, body = curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary", SEND,
                           url(srv, "/api/v1/send"))
    assert status == 200 and json.loads(body)["ID"]
    own = f"http://127.0.0.1:{srv.ports['http']}"  # the inspector's own UI
    status, _, _ = curl("-X", "PUT", "-H", f"Origin: {own}", "-H", "Content-Type: application/json; charset=utf-8",
                        "--data-binary", '{"Read":true}', url(srv, "/api/v1/messages"))
    assert status == 200
    status, _, _ = curl("-X", "PUT", "-H", "Origin: http://localhost:" + str(srv.ports["http"]), "-H",
                        "Content-Type: application/json", "--data-binary", '{"Read":true}',
                        url(srv, "/api/v1/messages", host="localhost"))
    assert status == 200
    # same host, another port is another origin (a dev server on :3000 is not the inspector)
    status, _, _ = curl("-X", "PUT", "-H", "Origin: http://127.0.0.1:3000", "-H", "Content-Type: application/json",
                        "--data-binary", '{"Read":true}', url(srv, "/api/v1/messages"))
    assert status == 403


def test_a_rebound_host_name_is_not_served(srv):
    port = srv.ports["http"]
    for path in ("/", "/api/v1/messages", "/api/v1/message/latest/raw", "/livez"):
        status, _, _ = curl("--resolve", f"evil.example:{port}:127.0.0.1", f"http://evil.example:{port}{path}")
        assert status == 421, path
    assert curl("-H", "Host: evil.example", url(srv, "/api/v1/messages"))[0] == 421
    assert curl("-H", "Host: 127.0.0.1.nip.io", url(srv, "/api/v1/messages"))[0] == 421
    for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"LOCALHOST.:{port}", "app.localhost",
                 "mx.example.test", f"[::1]:{port}", "127.0.0.2"):
        assert curl("-H", f"Host: {host}", url(srv, "/api/v1/messages"))[0] == 200, host


def _ws(srv, origin: str | None = None, host: str | None = None) -> int:
    """The HTTP status of a WebSocket handshake on /api/events (101 when it opened)."""

    async def go() -> int:
        port = srv.ports["http"]
        try:  # the URI's name goes into Host; the TCP connection goes to 127.0.0.1 (a rebound name)
            async with websockets.connect(f"ws://{host or '127.0.0.1'}:{port}/api/events", origin=origin,
                                          host="127.0.0.1", port=port, open_timeout=10):
                return 101
        except websockets.InvalidStatus as e:
            return e.response.status_code

    return asyncio.run(go())


def test_events_websocket_checks_origin_and_host(srv):
    assert _ws(srv, origin=EVIL) == 403
    assert _ws(srv, origin="null") == 403
    assert _ws(srv, host="evil.example") == 421
    assert _ws(srv, origin=f"http://127.0.0.1:{srv.ports['http']}") == 101
    assert _ws(srv) == 101  # no Origin: not a browser


def test_allowed_origins_get_cors_and_allowed_hosts_are_served(server_factory):
    app = "http://app.dev.test:3000"
    srv = server_factory(listeners=("smtp", "http"), capture=True,
                         sections={"http": {"allowed_origins": [app], "allowed_hosts": ["mail.dev.test"]}}).start()
    port = srv.ports["http"]
    status, headers, _ = curl("-X", "OPTIONS", "-H", f"Origin: {app}", "-H", "Access-Control-Request-Method: POST",
                              "-H", "Access-Control-Request-Headers: content-type", url(srv, "/api/v1/send"))
    assert status == 200 and headers["access-control-allow-origin"] == app
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"].lower()
    status, headers, body = curl("-X", "POST", "-H", f"Origin: {app}", "-H", "Content-Type: application/json",
                                 "--data-binary", SEND, url(srv, "/api/v1/send"))
    assert status == 200 and headers["access-control-allow-origin"] == app and json.loads(body)["ID"]
    status, headers, _ = curl("-X", "OPTIONS", "-H", f"Origin: {EVIL}", "-H", "Access-Control-Request-Method: POST",
                              url(srv, "/api/v1/send"))
    assert status == 400 and "access-control-allow-origin" not in headers
    assert curl("-X", "POST", "-H", f"Origin: {EVIL}", "-H", "Content-Type: application/json", "--data-binary", SEND,
                url(srv, "/api/v1/send"))[0] == 403
    assert _ws(srv, origin=app) == 101
    status, _, _ = curl("--resolve", f"mail.dev.test:{port}:127.0.0.1", f"http://mail.dev.test:{port}/api/v1/info")
    assert status == 200
    status, _, _ = curl("--resolve", f"evil.example:{port}:127.0.0.1", f"http://evil.example:{port}/api/v1/info")
    assert status == 421
