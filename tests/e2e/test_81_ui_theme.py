"""Scenario 81: light and dark themes, a phone-sized screen, and the HTML preview widths, in real Chromium.

Dark follows ``prefers-color-scheme`` (the page's mean luminance ≤ 0.35 with a message open, the message's own
default colours dark too) until the toggle chooses, and the choice survives a reload. At 390×844 the list and the
message are two screens (the open message at least 300 px wide); at 360 px nothing scrolls sideways. The HTML view
shows the message at desktop, tablet (768 px) and phone (375 px) widths.
"""

from __future__ import annotations

from tests.e2e.ui_support import PHONE, frame_ready, luminance, new_page, seed_demo, shoot, wait_for


def open_order(page, ui, ids):
    page.goto(f"{ui.base}/view/{ids['order']}")
    frame = frame_ready(page, "#headline")
    page.wait_for_selector("#status.live")
    return frame


def test_dark_follows_the_system(ui, browser):
    ui.clear()
    ids = seed_demo(ui)
    page = new_page(browser, color_scheme="dark")
    try:
        frame = open_order(page, ui, ids)
        assert frame.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
        assert luminance(page) <= 0.35
        shoot(page, "81-dark")
        page.goto(ui.base + "/")
        page.wait_for_selector("#list li")
        assert luminance(page) <= 0.35
    finally:
        page.context.close()


def test_light_and_the_toggle(ui, browser):
    ui.clear()
    ids = seed_demo(ui)
    page = new_page(browser, color_scheme="light")
    try:
        open_order(page, ui, ids)
        assert luminance(page) >= 0.6
        shoot(page, "81-light")
        page.click("#theme-toggle")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        frame = frame_ready(page, "#headline")
        wait_for(lambda: "theme=dark" in (page.get_attribute("#html-frame", "src") or ""), what="dark frame")
        frame = frame_ready(page, "#headline")
        wait_for(lambda: frame.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark",
                 what="dark message colours")
        assert luminance(page) <= 0.35
        page.reload()  # the choice is remembered, before the first paint
        frame_ready(page, "#headline")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert luminance(page) <= 0.35
        page.click("#theme-toggle")
        assert luminance(page) >= 0.6
    finally:
        page.context.close()


def test_phone_has_two_screens(ui, browser):
    ui.clear()
    ids = seed_demo(ui)
    page = new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page.goto(ui.base + "/")
        page.wait_for_selector("#status.live")
        page.locator("#list li").first.wait_for()
        box = page.locator("#list-pane").bounding_box()
        assert box["width"] >= 380
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        page.locator("#list li", has_text="Your order #1042").click()
        page.wait_for_selector("#view:not([hidden])")
        frame_ready(page, "#headline")
        assert page.locator("#list-pane").is_hidden()
        assert page.locator("#view").bounding_box()["width"] >= 300
        assert page.locator("#msg-back").is_visible()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        page.set_viewport_size({"width": 360, "height": 740})
        page.wait_for_timeout(100)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
        assert page.locator("#view").bounding_box()["width"] >= 300
        page.click("#msg-back")
        page.wait_for_selector("#list-pane", state="visible")
        assert page.locator("#view").is_hidden()
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
        page.go_back()  # the phone's back button returns to the message
        page.wait_for_selector("#view:not([hidden])")
        assert page.locator("#list-pane").is_hidden()
        assert ids["order"] in page.url
    finally:
        page.context.close()


def test_preview_widths(ui, page):
    ids = seed_demo(ui)
    open_order(page, ui, ids)
    full = page.locator("#html-frame").bounding_box()["width"]
    assert full > 600
    page.click("#preview-tablet")
    wait_for(lambda: round(page.locator("#html-frame").bounding_box()["width"]) == 768, what="tablet width")
    assert frame_ready(page, "#headline").evaluate("innerWidth") == 768
    page.click("#preview-phone")
    wait_for(lambda: round(page.locator("#html-frame").bounding_box()["width"]) == 375, what="phone width")
    assert page.get_attribute("#preview-phone", "aria-pressed") == "true"
    shoot(page, "81-preview-phone")
    page.click("#preview-desktop")
    wait_for(lambda: round(page.locator("#html-frame").bounding_box()["width"]) == round(full), what="full width")
