"""The link checker (``courrier/capture/linkcheck.py``; Mailpit's ``internal/linkcheck/main.go`` and ``status.go``)
against real HTTP servers on loopback: HEAD, redirects followed or not, reason phrases, failures, and the SSRF
refusals — by name (every resolved address checked) and on a redirect hop."""

from __future__ import annotations

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from courrier.capture.linkcheck import LinkChecker, extract_links, is_internal


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_HEAD(self):  # noqa: N802
        Handler.seen.append((self.command, self.path))
        routes = {"/ok": (200, None), "/missing": (404, None), "/moved": (301, "/ok"),
                  "/away": (302, f"http://127.0.0.2:{self.server.server_port}/ok"),
                  "/loop": (302, "/loop")}
        code, loc = routes.get(self.path.split("?")[0], (500, None))
        self.send_response(code)
        if loc:
            self.send_header("Location", loc)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def web():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # 127.0.0.2 (a refused hop) is never contacted
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}", srv.server_port
    srv.shutdown()
    srv.server_close()


def test_extract_links_as_mailpit():
    html = ('<a href="https://a.test/x">a</a><a href="mailto:x@y">m</a><img src="http://img.test/i.png">'
            '<link rel="stylesheet" href="https://css.test/s.css"><link rel="icon" href="https://icon.test/">'
            '<a href="https://a.test/x">again</a>')
    text = "see https://t.test/page?q=1, and http://a.test/x"
    assert extract_links(html, text) == ["https://a.test/x", "http://img.test/i.png", "https://css.test/s.css",
                                         "https://t.test/page?q=1,", "http://a.test/x"]


def test_internal_addresses():
    for a in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
              "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1", "240.0.0.1"):
        assert is_internal(ipaddress.ip_address(a)), a
    for a in ("93.184.215.14", "2606:4700::1111"):
        assert not is_internal(ipaddress.ip_address(a)), a


async def test_statuses_and_redirects(web):
    base, _ = web
    c = LinkChecker(allow_internal=True)
    html = f'<a href="{base}/ok">1</a><a href="{base}/missing">2</a><img src="{base}/moved">'
    errors, links = await c.check(html, f"{base}/loop http://127.0.0.1:1/closed", follow=False)
    got = {x.url.replace(base, ""): (x.status_code, x.status) for x in links}
    assert got == {"/ok": (200, "OK"), "/missing": (404, "Not Found"), "/moved": (301, "Moved Permanently"),
                   "/loop": (302, "Found"), "http://127.0.0.1:1/closed": (0, "connection refused")}
    assert errors == 2
    assert ("HEAD", "/ok") in Handler.seen
    c = LinkChecker(allow_internal=True)
    errors, links = await c.check("", f"{base}/moved {base}/loop", follow=True)
    got = {x.url.replace(base, ""): (x.status_code, x.status) for x in links}
    assert got == {"/moved": (200, "OK"), "/loop": (0, "stopped after 10 redirects")}


async def test_cache_answers_for_60_seconds(web):
    base, _ = web
    c = LinkChecker(allow_internal=True)
    before = len(Handler.seen)
    await c.status(f"{base}/ok?cache", False)
    await c.status(f"{base}/ok?cache", False)
    assert len(Handler.seen) == before + 1


async def test_internal_targets_refused(web):
    base, port = web
    before = len(Handler.seen)
    c = LinkChecker()  # the default: no internal addresses
    _, links = await c.check("", f"{base}/ok http://localhost:{port}/ok http://[::1]:{port}/ok", follow=True)
    assert {(x.status_code, x.status) for x in links} == {(451, "Blocked private/reserved address")}
    assert len(Handler.seen) == before  # nothing was contacted
    # A redirect hop is checked too: 127.0.0.1 stands for a public first hop, 127.0.0.2 for the internal target.
    c = LinkChecker(blocked=lambda ip: str(ip) == "127.0.0.2")
    link = await c.status(f"{base}/away", True)
    assert (link.status_code, link.status) == (451, "Blocked private/reserved address")
    assert Handler.seen[-1] == ("HEAD", "/away")  # the second hop never left
    link = await c.status(f"{base}/away", False)
    assert link.status_code == 302
