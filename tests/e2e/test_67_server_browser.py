"""Scenario 67: the web UI in server mode, in real headless Chromium — an admin logs in (HTTP basic auth), picks
bob's INBOX in the mailbox picker, sees a message delivered by SMTP appear live, opens it (which sets \\Seen)."""

from __future__ import annotations

import httpx
from playwright import sync_api as playwright_sync

from tests.e2e.test_65_browser import ARGS, CHROMIUM, wait_for
from tests.e2e.test_66_server_inspector import ADMIN, BOB, BOB_INBOX, deliver


def test_mailbox_picker_in_chromium(server_factory):
    srv = server_factory(listeners=("smtp", "http"))
    srv.add_user(ADMIN[0], ADMIN[1], "--admin")
    srv.add_user(BOB, "bobpw")
    srv.add_user("carol@example.test", "carolpw")
    srv.start()
    deliver(srv, "hello bob", "first words for bob")
    deliver(srv, "hello carol", to="carol@example.test")
    base = f"http://127.0.0.1:{srv.ports['http']}"
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            ctx = browser.new_context(http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
            page = ctx.new_page()
            page.set_default_timeout(10_000)
            page.goto(base + "/")
            page.wait_for_selector("#mailbox-picker:not([hidden])")
            accounts = page.locator("#mb-account option").all_inner_texts()
            assert accounts == [ADMIN[0], BOB, "carol@example.test"]
            assert page.locator("#mb-account").input_value() == ADMIN[0]  # the admin's own INBOX first
            assert page.locator("#mb-folder").input_value() == "INBOX"
            page.wait_for_selector("#status.live")
            assert page.locator("#list li").count() == 0

            page.select_option("#mb-account", BOB)
            item = page.locator("#list li", has_text="hello bob")
            item.wait_for()
            assert page.locator("#list li", has_text="hello carol").count() == 0
            assert "unread" in (item.get_attribute("class") or "")
            wait_for(lambda: page.locator("#status.live").count() == 1, what="live events for bob's INBOX")

            # delivered while watching: appears without a reload
            deliver(srv, "while you watch")
            page.locator("#list li", has_text="while you watch").wait_for()

            item.click()
            page.wait_for_selector("#view:not([hidden])")
            assert page.locator("#msg-subject").inner_text() == "hello bob"
            assert page.locator("#env-from").inner_text() == "<bounces@sender.test>"
            assert page.locator("#env-rcpt").inner_text() == f"<{BOB}>"
            assert "first words for bob" in page.locator("#pane-text").inner_text()
            page.click("#tab-source")
            # the source pane is filled by a fetch after the click: wait for it, not a race with the reader
            wait_for(lambda: "Delivered-To: bob@example.test" in page.locator("#pane-source").inner_text(),
                     what="the source pane")
            wait_for(lambda: "unread" not in (item.get_attribute("class") or ""), what="read state in the list")
        finally:
            browser.close()
    with httpx.Client(base_url=base, auth=ADMIN, timeout=10) as c:
        read = {m["Subject"]: m["Read"] for m in c.get("/api/v1/messages", params=BOB_INBOX).json()["messages"]}
    assert read == {"hello bob": True, "while you watch": False}
