"""Scenario 88: the message checks as tabs, in real Chromium — the HTML check (total support, per platform, the
warnings with their scores), the link check run by its button against a loopback HTTP server (``[capture]
link_check_internal = true``; the 404 row highlighted) and the spam check from Debian's spamd (tests/spamd.py: GTUBE
is spam, its rule listed). Without ``[capture] spamassassin`` the Spam check tab is not shown. Message text reaches
the page as text: a link whose URL carries markup shows it, and nothing of it runs."""

from __future__ import annotations

import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.ui_support import UI, mail, new_page, send, shoot, wait_for
from tests.spamd import GTUBE, Spamd
from tests.support import Server


@pytest.fixture(scope="module")
def web():
    """A loopback HTTP server the message's links point to: /ok 200, /gone 404."""

    class H(BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response(200 if self.path.startswith("/ok") else 404)
            self.end_headers()

        def log_message(self, *a):
            pass

    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{s.server_port}"
    s.shutdown()
    s.server_close()


@pytest.fixture(scope="module")
def spamd():
    with Spamd() as s:
        yield s


@pytest.fixture(scope="module")
def checks_ui(tmp_path_factory, spamd):
    srv = Server(tmp_path_factory.mktemp("ui88"), listeners=("smtp", "http"), capture=True,
                 sections={"capture": {"link_check_internal": True, "spamassassin": spamd.address}}).start()
    u = UI(srv)
    yield u
    u.api.close()
    srv.stop()


def newsletter(web: str, body: str = "See the offer") -> EmailMessage:
    html = (f'<html><head><style>.b {{ display: flex }}</style></head><body><div class="b">'
            f'<a href="{web}/ok">Our shop</a> <a href="{web}/gone?&lt;b&gt;x&lt;/b&gt;">Old page</a>'
            f'<img src="{web}/ok/logo.webp"></div><script>go()</script></body></html>')
    return mail("Spring newsletter", body, sender="Shop <news@shop.example>", html=html)


def shoot_tab(page, name: str) -> None:
    """The screenshots with the tab bar at the top, so that they show the check rather than the envelope."""
    page.locator("nav.tabs").evaluate("(e) => e.scrollIntoView()")
    shoot(page, name)


def open_message(page, base: str, msg_id: str, subject: str) -> None:
    page.goto(f"{base}/view/{msg_id}")
    wait_for(lambda: page.locator("#msg-subject").inner_text() == subject, what=subject)


def test_html_and_link_check_tabs(checks_ui, browser, web):
    checks_ui.clear()
    msg_id = send(checks_ui, newsletter(web))
    page = new_page(browser)
    try:
        open_message(page, checks_ui.base, msg_id, "Spring newsletter")
        assert page.locator("#tab-htmlcheck").is_visible() and page.locator("#tab-linkcheck").is_visible()

        page.click("#tab-htmlcheck")
        page.wait_for_selector("#htmlcheck-warnings")
        total = checks_ui.api.get(f"/api/v1/message/{msg_id}/html-check").json()
        assert page.locator("#htmlcheck-score").inner_text() == f"{round(total['Total']['Supported'] * 10) / 10:g}%"
        script = page.locator('#htmlcheck-warnings li[data-slug="html-script"]')
        assert "<script> element" in script.inner_text() and "unsupported 100%" in script.inner_text()
        assert page.locator('#htmlcheck-warnings li[data-slug="css-display-flex"]').count() == 1
        assert page.locator('#htmlcheck-warnings li[data-slug="image-webp"]').count() == 1
        assert page.locator('#htmlcheck-warnings li').first.get_attribute("data-slug") == "html-script"
        gmail = page.locator('#htmlcheck-platforms tr[data-platform="desktop-webmail"]')
        assert "Gmail" in gmail.inner_text() and int(gmail.locator("td").nth(2).inner_text()) >= 1
        assert page.locator("#pane-htmlcheck script").count() == 0
        shoot_tab(page, "88-html-check")

        page.click("#tab-linkcheck")
        assert page.locator("#linkcheck-results tr").count() == 0  # nothing is fetched before the button
        page.click("#linkcheck-run")
        wait_for(lambda: "error" in page.locator("#linkcheck-summary").inner_text(), what="link check result")
        assert page.locator("#linkcheck-summary").inner_text() == "3 links, 1 error"
        rows = {r.locator("td").nth(1).inner_text().replace(web, ""): r for r in
                page.locator("#linkcheck-results tbody tr").all()}
        assert set(rows) == {"/ok", "/gone?<b>x</b>", "/ok/logo.webp"}
        assert rows["/ok"].locator("td").first.inner_text() == "200 OK"
        assert rows["/gone?<b>x</b>"].locator("td").first.inner_text() == "404 Not Found"
        assert rows["/gone?<b>x</b>"].get_attribute("class") == "check-error"
        assert rows["/ok"].get_attribute("class") == ""
        assert page.locator("#linkcheck-results b").count() == 0  # the URL's markup is text
        shoot_tab(page, "88-link-check")

        # a text-only message has no HTML check; another message starts with an empty link check
        text_id = send(checks_ui, mail("Plain note", f"Read {web}/ok"))
        open_message(page, checks_ui.base, text_id, "Plain note")
        assert page.locator("#tab-htmlcheck").is_hidden()
        page.click("#tab-linkcheck")
        assert page.locator("#linkcheck-results tr").count() == 0
        page.click("#linkcheck-run")
        wait_for(lambda: page.locator("#linkcheck-summary").inner_text() == "1 link, 0 errors", what="one link")
    finally:
        page.context.close()


def test_spam_check_tab(checks_ui, browser, web):
    checks_ui.clear()
    spam = send(checks_ui, newsletter(web, f"Buy now\n{GTUBE}\n"))
    page = new_page(browser)
    try:
        open_message(page, checks_ui.base, spam, "Spring newsletter")
        page.click("#tab-spamcheck")
        page.wait_for_selector("#spamcheck-rules")
        assert float(page.locator("#spamcheck-score").inner_text()) >= 1000
        assert page.locator("#spamcheck-verdict").inner_text() == "spam"
        gtube = page.locator("#spamcheck-rules tbody tr", has_text="GTUBE")
        assert "Generic Test for Unsolicited Bulk Email" in gtube.inner_text()
        assert gtube.get_attribute("class") == "check-error"
        shoot_tab(page, "88-spam-check")
    finally:
        page.context.close()


def test_no_spam_tab_without_spamassassin(ui, page):
    """The shared UI server of tests/e2e/ui_support.py has no ``[capture] spamassassin``."""
    msg_id = send(ui, mail("No spamd here", "hello"))
    with page.expect_response(lambda r: r.url.endswith("/api/v1/webui")) as webui:
        open_message(page, ui.base, msg_id, "No spamd here")
    assert webui.value.json()["SpamAssassin"] is False
    page.wait_for_load_state("networkidle")  # the page has acted on that answer
    assert page.locator("#tab-spamcheck").is_hidden() and page.locator("#tab-linkcheck").is_visible()
