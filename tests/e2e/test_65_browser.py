"""Scenario 65: the web UI in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

A message sent by SMTP appears live in the list; opening it shows the envelope beside the headers with the forged
From marked red; HTML/text/source tabs switch; an attachment downloads; hostile HTML (<script>, onerror=) does not
run; remote images stay unloaded until the user asks.
"""

from __future__ import annotations

import smtplib
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright import sync_api as playwright_sync

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PIXEL = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
         b"\x89\x00\x00\x00\rIDATx\xdac\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND"
         b"\xaeB`\x82")


class Tracker:
    """A plain HTTP server on loopback that records every path requested: the "remote" side of the test."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PIXEL)))
                self.end_headers()
                self.wfile.write(PIXEL)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def hostile_message(tracker: Tracker) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "The Bank <security@bank.test>"  # the header From: what the victim sees
    m["To"] = "victim@example.test"
    m["Subject"] = "Verify your account"
    m.set_content("Plain text: please verify your account.")
    m.add_alternative(
        f"""<html><body><h1 id="title">Verify your account</h1>
        <script>document.body.setAttribute('data-pwned', 'script'); fetch('{tracker.url}/script-ran');</script>
        <img id="broken" src="x-nonexistent.png" onerror="document.body.setAttribute('data-pwned', 'onerror');
             new Image().src='{tracker.url}/onerror-ran'">
        <img id="remote" src="{tracker.url}/pixel.png" alt="tracking pixel">
        <img id="inline" src="cid:logo@bank.test" alt="inline logo">
        <a id="evil" href="javascript:alert(1)">click</a></body></html>""", subtype="html")
    m.get_payload()[1].add_related(PIXEL, "image", "png", cid="<logo@bank.test>", disposition="inline")
    m.add_attachment(b"id,amount\n1,100\n", maintype="text", subtype="csv", filename="statement.csv")
    return m


@pytest.fixture
def tracker():
    t = Tracker()
    yield t
    t.close()


def wait_for(cond, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_inspector_in_chromium(server_factory, tracker, tmp_path):
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    base = f"http://127.0.0.1:{srv.ports['http']}"
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.set_default_timeout(10_000)
            page.goto(base + "/")
            page.wait_for_selector("#status.live")  # WebSocket connected
            assert page.locator("#list li").count() == 0

            # sent over SMTP by a forger: envelope sender differs from the header From
            with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
                c.sendmail("phisher@evil.test", ["victim@example.test"], hostile_message(tracker).as_bytes())

            item = page.locator("#list li", has_text="Verify your account")
            item.wait_for()  # appeared live, without reloading
            assert "unread" in (item.get_attribute("class") or "")
            item.click()

            # envelope panel: MAIL FROM beside header From, mismatch marked red
            page.wait_for_selector("#view:not([hidden])")
            assert page.locator("#env-from").inner_text() == "<phisher@evil.test>"
            assert "security@bank.test" in page.locator("#hdr-from").inner_text()
            assert "mismatch" in (page.locator("#env-from").get_attribute("class") or "")
            assert page.locator("#mismatch-note").is_visible()
            color = page.locator("#env-from").evaluate("e => getComputedStyle(e).color")
            assert color == "rgb(187, 0, 0)"  # red
            assert page.locator("#env-rcpt").inner_text() == "<victim@example.test>"

            # the HTML view: sanitized, sandboxed, CSP'd
            frame_el = page.wait_for_selector("#html-frame")
            frame = wait_for(lambda: frame_el.content_frame(), what="iframe")
            frame.wait_for_selector("#title")
            assert frame.locator("#title").inner_text() == "Verify your account"
            assert frame.locator("script").count() == 0
            assert frame.locator("[onerror]").count() == 0
            assert frame.locator("#evil").get_attribute("href") is None  # javascript: URL dropped
            assert frame.locator("body").get_attribute("data-pwned") is None
            assert page.evaluate("document.body.getAttribute('data-pwned')") is None
            sandbox = frame_el.get_attribute("sandbox") or ""
            assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
            # the inline (cid:) image is shown, served by the part endpoint
            wait_for(lambda: frame.locator("#inline").evaluate("img => img.complete && img.naturalWidth") == 1,
                     what="inline image")
            # remote image not loaded by default
            assert frame.locator("#remote").evaluate("img => img.naturalWidth") == 0
            time.sleep(0.3)
            assert tracker.hits == []

            # text and source tabs
            page.click("#tab-text")
            assert page.locator("#pane-text").is_visible() and not page.locator("#pane-html").is_visible()
            assert "Plain text: please verify your account." in page.locator("#pane-text").inner_text()
            page.click("#tab-source")
            src = page.locator("#pane-source").inner_text()
            assert "Subject: Verify your account" in src and "Content-Type: multipart/mixed" in src
            page.click("#tab-headers")
            assert "security@bank.test" in page.locator("#pane-headers").inner_text()

            # attachment download
            with page.expect_download() as dl:
                page.click("a.attachment")
            target = tmp_path / "statement.csv"
            dl.value.save_as(target)
            assert dl.value.suggested_filename == "statement.csv"
            assert target.read_bytes() == b"id,amount\n1,100\n"

            # back to HTML, then the user asks for remote content: now (and only now) the pixel loads
            page.click("#tab-html")
            page.click("#remote-btn")
            wait_for(lambda: "/pixel.png" in tracker.hits, what="remote image after opt-in")
            assert "/script-ran" not in tracker.hits and "/onerror-ran" not in tracker.hits

            # read state went live to the list
            assert "unread" not in (item.get_attribute("class") or "")

            # the search box uses Mailpit's syntax
            page.fill("#search", "subject:no-such-thing")
            page.press("#search", "Enter")
            wait_for(lambda: page.locator("#list li").count() == 0, what="empty search result")
            page.fill("#search", "from:security@bank.test has:attachment")
            page.press("#search", "Enter")
            page.locator("#list li", has_text="Verify your account").wait_for()
        finally:
            browser.close()
