"""Scenario 80: the inspector's addresses and keys in real Chromium — /view/{ID}, /view/latest (an HTTP 302, with
?query=), /search?q=…, back/forward, newer/older message, and the single-key shortcuts (j, k, Delete, r, /, ?)."""

from __future__ import annotations

from urllib.parse import quote

from tests.e2e.ui_support import mail, send, shoot, wait_for


def path(page) -> str:
    return page.evaluate("location.pathname + location.search")


def subject(page, expect: str = "") -> str:
    """The open message's subject, once it is ``expect`` (when given): rendering follows the URL change."""
    page.wait_for_selector("#view:not([hidden])")
    if expect:
        wait_for(lambda: page.locator("#msg-subject").inner_text() == expect, what=f"subject {expect!r}")
    return page.locator("#msg-subject").inner_text()


def test_view_latest_is_a_redirect(ui):
    ui.clear()
    first = send(ui, mail("Alpha report"))
    last = send(ui, mail("Beta invoice"))
    r = ui.api.get("/view/latest", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"/view/{last}"
    r = ui.api.get("/view/latest", params={"query": "subject:alpha"}, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"/view/{first}"
    assert ui.api.get("/view/latest", params={"query": "subject:nothing"}, follow_redirects=False).status_code == 404
    for url in (f"/view/{first}", "/search?q=subject%3Aalpha"):
        r = ui.api.get(url)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "app.js" in r.text
    # the Mailpit-compatible renderings keep their meaning beside the UI route
    assert ui.api.get(f"/view/{first}.txt").text.strip() == "hello"


def test_deep_links_history_and_keys(ui, page):
    a = send(ui, mail("Alpha report", "first"))
    b = send(ui, mail("Beta invoice", "second"))
    c = send(ui, mail("Gamma welcome", "third"))

    page.goto(ui.base + "/view/latest")
    assert subject(page, "Gamma welcome") == "Gamma welcome" and path(page) == f"/view/{c}"
    page.goto(ui.base + f"/view/{b}")  # a deep link opens the message, the list beside it
    assert subject(page, "Beta invoice") == "Beta invoice"
    assert page.locator("#list li.selected").get_attribute("data-id") == b
    page.goto(ui.base + "/")
    page.wait_for_selector("#status.live")
    page.locator("#list li", has_text="Gamma welcome").click()
    wait_for(lambda: path(page) == f"/view/{c}", what="URL of the opened message")
    page.keyboard.press("j")  # older
    wait_for(lambda: path(page) == f"/view/{b}", what="j")
    page.keyboard.press("j")
    wait_for(lambda: path(page) == f"/view/{a}", what="j again")
    assert subject(page, "Alpha report") == "Alpha report"
    page.keyboard.press("k")  # newer
    wait_for(lambda: path(page) == f"/view/{b}", what="k")
    page.click("#msg-next")  # the toolbar's older-message button
    wait_for(lambda: path(page) == f"/view/{a}", what="older button")
    page.go_back()
    wait_for(lambda: page.locator("#msg-subject").inner_text() == "Beta invoice", what="back")
    page.go_back()
    wait_for(lambda: page.locator("#msg-subject").inner_text() == "Alpha report", what="back again")
    page.go_forward()
    wait_for(lambda: page.locator("#msg-subject").inner_text() == "Beta invoice", what="forward")

    # "/" focuses the search; the search has its own address, back returns to the message
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("subject:alpha")
    page.keyboard.press("Enter")
    wait_for(lambda: path(page) == "/search?q=" + quote("subject:alpha", safe=""), what="search URL")
    wait_for(lambda: page.locator("#list li").count() == 1, what="search result")
    assert page.locator("#view").is_hidden()
    page.go_back()
    wait_for(lambda: page.locator("#list li").count() == 3, what="whole list after back")
    assert subject(page, "Beta invoice") == "Beta invoice"

    # a search link opened fresh: box filled, list filtered; a message opened from it keeps ?q=
    page.goto(ui.base + "/search?q=" + quote("subject:gamma"))
    wait_for(lambda: page.locator("#list li").count() == 1, what="deep-linked search")
    assert page.locator("#search").input_value() == "subject:gamma"
    page.locator("#list li").first.click()
    wait_for(lambda: path(page) == f"/view/{c}?q=" + quote("subject:gamma", safe=""), what="view in a search")
    page.reload()
    assert subject(page, "Gamma welcome") == "Gamma welcome" and page.locator("#list li").count() == 1

    # r: read / unread; Delete: gone, the next one opens
    page.goto(ui.base + f"/view/{b}")
    assert subject(page, "Beta invoice") == "Beta invoice"
    item = page.locator(f'#list li[data-id="{b}"]')
    wait_for(lambda: "unread" not in (item.get_attribute("class") or ""), what="read on open")
    page.keyboard.press("r")
    wait_for(lambda: "unread" in (item.get_attribute("class") or ""), what="r marks unread")
    assert {m["ID"]: m["Read"] for m in ui.api.get("/api/v1/messages").json()["messages"]}[b] is False
    page.keyboard.press("Delete")
    wait_for(lambda: path(page) == f"/view/{a}", what="next message after Delete")
    assert b not in ui.ids()

    # ? opens the help overlay, Esc closes it, Esc again closes the message
    page.keyboard.press("?")
    page.wait_for_selector("#help:not([hidden])")
    assert "next (older) message" in page.locator("#help").inner_text()
    shoot(page, "80-help")
    page.keyboard.press("Escape")
    page.wait_for_selector("#help", state="hidden")
    page.keyboard.press("Escape")
    wait_for(lambda: path(page) == "/", what="Esc back to the list")

    page.goto(ui.base + "/view/NO-SUCH-ID")
    assert "No message NO-SUCH-ID" in subject(page)
