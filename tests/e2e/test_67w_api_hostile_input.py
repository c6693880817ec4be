"""Scenario 67w: no 5xx for bad input anywhere in the HTTP API (issue 11, item 18).

The endpoints are read from the app's own route table (``courrier.web.asgi.build``), so an endpoint added later is
walked too. Each one gets hostile path values (huge and negative numbers, NUL, CR/LF, 10 KB strings, invalid UTF-8,
path tricks), hostile query values on every parameter name the API reads, hostile JSON bodies (wrong types, deep
nesting, invalid UTF-8, CR/LF in every send field) and every method, against a real `courrier serve --capture`;
nothing may answer 5xx, the log holds no traceback, and the server is still alive and serving at the end.
Also the specific cases the issue names: CR/LF in /api/v1/send fields, ``larger:``/``smaller:`` overflow, and an
empty ``PUT /api/v1/messages`` body (it used to mark every message unread) → 400 with ``{"Error": …}``.
"""

from __future__ import annotations

import re
import socket
import time
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount, Route, WebSocketRoute

from courrier.config import Config
from tests.e2e.capture_support import send

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO")
HOSTILE = ["0", "-1", "9" * 400, "18446744073709551616", "%00", "a%00b", "%0d%0aX-Injected:%20yes", "A" * 10240,
           "%FF%FE%FD", "%C0%AF", "..%2F..%2Fetc%2Fpasswd", "1.2.3.4.5", "' OR 1=1 --", "%E2%80%AE", "latest"]
QUERY_NAMES = ("start", "limit", "query", "tz", "mailbox", "remote", "embed", "dl", "id", "before", "Search")
QUERY_VALUES = ["-1", "9" * 400, "1e400", "\x00", "a\r\nb", "x" * 10240, "Europe/../../etc/passwd",
                "A" * 300, "larger:99999999999999999999999", "smaller:1e999 before:9999-99-99 after:-1",
                '"unterminated', "is:read -is:read !", "tag:\x00"]
BODIES = [b"", b"null", b"[]", b'"text"', b"1e999", b"{", b"[" * 100000, b"\xff\xfe\x00", b'{"IDs": "x"}',
          b'{"IDs": [1, 2]}', b'{"IDs": [null]}', b'{"Read": "yes"}', b'{"Read": true, "Search": 5}',
          b'{"Search": "larger:99999999999999999999G"}', b'{"To": [5]}', b'{"To": "x@y.test"}',
          b'{"To": ["a@[127.0.0.1]"]}', b'{"To": ["\\u0000@x"]}', b'{"Tags": [1]}', b'{"Tags": ["a\\r\\nb"]}',
          b'{"Name": 5}', b'{"Name": "' + b"x" * 10240 + b'"}', b'{"Paused": "yes"}', b'{"Paused": null}',
          b'{"From": {"Email": 5}}', b'{"From": {"Email": "a@b.test", "Name": ["x"]}, "To": ["c@d.test"]}',
          b'{"From": "a@b.test", "To": ["c@d.test"], "Attachments": [{"Filename": "x", "Content": "!!"}]}',
          b'{"From": "a@b.test", "To": ["c@d.test"], "Attachments": "x"}', b'{"IDs": ["' + b"A" * 10240 + b'"]}']


def app_routes() -> list[tuple[str, tuple[str, ...], bool]]:
    """(path template, methods, is_websocket) of every route the app serves, read from its route table."""
    from courrier.web.asgi import build

    app = build(SimpleNamespace(ready=True, cfg=Config()))  # type: ignore[arg-type]  # listing needs no more
    while not isinstance(app, FastAPI):
        app = app.app  # through the middlewares
    out: list[tuple[str, tuple[str, ...], bool]] = []

    def walk(routes: list, prefix: str) -> None:
        for r in routes:
            inner = getattr(r, "original_router", None)  # recent FastAPI keeps an included router as one entry
            if inner is not None:
                walk(inner.routes, prefix + getattr(getattr(r, "include_context", None), "prefix", ""))
            elif isinstance(r, WebSocketRoute):
                out.append((prefix + r.path, ("GET",), True))
            elif isinstance(r, Route):
                out.append((prefix + r.path, tuple(sorted(r.methods or ("GET",))), False))
            elif isinstance(r, Mount):
                out.append((prefix + r.path + "/{path}", ("GET",), False))

    walk(app.routes, "")
    return out


def fill(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.support import Server

    d = tmp_path_factory.mktemp("api-hostile")
    s = Server(d, listeners=("smtp", "http"), capture=True).start()
    yield s
    s.stop()


def seed(srv) -> str:
    return send(srv.ports["smtp"], ["bob@example.test"],
                b"From: a@sender.test\r\nTo: bob@example.test\r\nSubject: seed\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="s"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
                b"--s\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--s--\r\n")


def handshake(port: int, target: bytes) -> bytes:
    """The status code of a WebSocket opening handshake (RFC 6455 §4.1) for ``target``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        line = s.recv(4096).split(b"\r\n", 1)[0]
    return line.split(b" ")[1] if line.count(b" ") >= 1 else b"closed"


def check(r: httpx.Response, what: object) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:300])


def test_the_route_table_is_walked_whole():
    paths = {p for p, _, _ in app_routes()}
    assert {"/api/v1/messages", "/api/v1/message/{ID}/part/{PartID}", "/api/v1/send", "/api/events",
            "/api/v1/message/{ID}/release", "/view/{ID}.html", "/api/courrier/pause"} <= paths


def test_every_endpoint_survives_hostile_input(srv):
    base = f"http://127.0.0.1:{srv.ports['http']}"
    routes = app_routes()
    sent = 0
    with httpx.Client(base_url=base, timeout=30) as c:
        mid = seed(srv)
        for template, methods, ws in routes:
            if "/api/v1/messages" in template or "/search" in template or "{ID}" in template:
                mid = seed(srv)  # the previous route may have deleted everything
            valid = fill(template, mid).replace(f"/part/{mid}", "/part/1")
            if ws:  # the WebSocket handshake itself, with hostile query values
                for raw in ("%FF%FE", "%00", "a%0D%0Ab", "9" * 400, "x" * 4000, "..%2F..%2F"):
                    query = "&".join(f"{n}={raw}" for n in QUERY_NAMES).encode()
                    status = handshake(srv.ports["http"], valid.encode() + b"?" + query)
                    assert not status.startswith(b"5"), (template, raw, status)
                    sent += 1
            for value in HOSTILE:  # hostile path values (raw: already %-encoded where needed)
                for method in methods:
                    check(c.request(method, httpx.URL(base + fill(template, value))), (method, template, value))
                    sent += 1
            for value in QUERY_VALUES:  # every query parameter name the API reads (at once while the URL is short)
                groups = [QUERY_NAMES] if len(value) < 4096 else [(n,) for n in QUERY_NAMES]
                for method in methods:
                    for names in groups:
                        params = {n: value for n in names}
                        if template.endswith("/wait"):  # answer at once (a search scoped to a hostile
                            params["timeout"] = "0"     # ?mailbox= matches nothing: it would wait 30 s)
                        r = c.request(method, valid, params=params)
                        check(r, (method, template, names, value[:60]))
                        sent += 1
            for raw in ("%FF%FE", "%00", "%C0%AF", "%ED%A0%80"):  # invalid UTF-8 after %-decoding, every name
                for method in methods:
                    url = httpx.URL(base + valid + "?" + "&".join(f"{n}={raw}" for n in QUERY_NAMES))
                    check(c.request(method, url), (method, template, raw))
                    sent += 1
            for method in METHODS:  # wrong methods (and the right ones without a body)
                check(c.request(method, valid), (method, template))
                sent += 1
            for method in set(methods) - {"GET", "HEAD"}:
                for body in BODIES:
                    r = c.request(method, valid, content=body, headers={"Content-Type": "application/json"})
                    check(r, (method, template, body[:60]))
                    sent += 1
        # invalid UTF-8 and control octets in the request line itself, below any client's URL encoding
        for raw in (b"/api/v1/message/\xff\xfe", b"/view/\xc0\xaf.html", b"/api/v1/search?query=\xff",
                    b"/api/v1/messages?start=\xff", b"/api/v1/message/a\x00b"):
            with socket.create_connection(("127.0.0.1", srv.ports["http"]), timeout=10) as s:
                s.sendall(b"GET " + raw + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                status = s.recv(4096).split(b"\r\n", 1)[0]
                assert status and not status.split(b" ")[1].startswith(b"5"), (raw, status)
                sent += 1
        assert c.get("/livez").text == "ok" and c.get("/api/v1/messages").status_code == 200
    assert srv.proc.poll() is None and "Traceback" not in srv.log()
    print(f"hostile requests sent: {sent}")


def test_the_named_cases_answer_400_with_a_json_error(srv):
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=30) as c:
        mid = seed(srv)
        time.sleep(0.1)
        assert c.put("/api/v1/messages", json={"Read": True}).text == "ok"  # every message read
        r = c.put("/api/v1/messages", content=b"", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON body" in r.json()["Error"]
        assert c.get(f"/api/v1/message/{mid}/headers").status_code == 200
        assert c.get("/api/v1/search", params={"query": f"message-id:{mid}"}).status_code == 200
        assert c.get("/api/v1/search", params={"query": "is:unread"}).json()["messages_count"] == 0  # nothing changed
        for q in ("larger:99999999999999999999999", "smaller:1e999", "larger:9223372036854775808",
                  "subject:x larger:" + "9" * 5000):
            r = c.get("/api/v1/search", params={"query": q})
            assert r.status_code == 400 and "too large" in r.json()["Error"], q
            r = c.delete("/api/v1/search", params={"query": q})
            assert r.status_code == 400 and "too large" in r.json()["Error"], q
        r = c.put("/api/v1/messages", json={"Read": True, "Search": "larger:99999999999999999999999"})
        assert r.status_code == 400 and "too large" in r.json()["Error"]
        good = {"From": {"Email": "app@sender.test", "Name": "App"}, "To": [{"Email": "u@example.test", "Name": "U"}],
                "Subject": "s", "Tags": ["t"], "Headers": {"X-A": "b"},
                "Attachments": [{"Filename": "f.txt", "Content": "aGk=", "ContentType": "text/plain",
                                 "ContentID": "c@x"}]}
        assert c.post("/api/v1/send", json=good).status_code == 200
        for path in (("From", "Name"), ("From", "Email"), ("To", 0, "Name"), ("To", 0, "Email"), ("Subject",),
                     ("Tags", 0), ("Headers", "X-A"), ("Attachments", 0, "Filename"), ("Attachments", 0, "ContentType"),
                     ("Attachments", 0, "ContentID")):
            for bad in ("x\r\nBcc: victim@elsewhere.test", "x\ny", "x\rY", "x\x00y"):
                body = __import__("copy").deepcopy(good)
                cur = body
                for k in path[:-1]:
                    cur = cur[k]
                cur[path[-1]] = bad if path[-1] != "Email" else bad + "@sender.test"
                r = c.post("/api/v1/send", json=body)
                assert r.status_code == 400 and "Error" in r.json(), (path, bad, r.text)
        r = c.post("/api/v1/send", json={**good, "Headers": {"X-A\r\nBcc": "v"}})
        assert r.status_code == 400 and "Headers" in r.json()["Error"]
