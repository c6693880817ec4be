"""Scenario 82: what the open message shows, in real Chromium — date, size, Reply-To, List-Unsubscribe; tags added
with the tag input (Enter) and removed with ×, the tag sidebar's counts and its click-to-filter; downloads as
.eml, HTML and text; image attachments as thumbnails; the HTML source highlighted."""

from __future__ import annotations

from urllib.parse import quote

from tests.e2e.ui_support import seed_demo, shoot, wait_for


def tags_of(ui, msg_id: str) -> list[str]:
    return ui.api.get(f"/api/v1/message/{msg_id}").json()["Tags"]


def open_message(page, ui, msg_id: str, subject: str) -> None:
    page.goto(f"{ui.base}/view/{msg_id}")
    wait_for(lambda: page.locator("#msg-subject").inner_text() == subject, what=subject)


def test_details_and_downloads(ui, page, tmp_path):
    ids = seed_demo(ui)
    open_message(page, ui, ids["digest"], "Weekly digest: 3 new comments 💬")
    assert page.locator("#msg-reply-to").inner_text() == "Forum team <team@forum.example>"
    unsub = page.locator("#msg-unsub a")
    assert unsub.get_attribute("href") == "https://forum.example/unsub?u=42"
    assert page.locator("#msg-date").inner_text().strip() != ""
    assert page.locator("#msg-size").inner_text().endswith("B")

    raw = ui.api.get(f"/api/v1/message/{ids['digest']}/raw").content
    with page.expect_download() as dl:
        page.click("#dl-eml")
    assert dl.value.suggested_filename == f"{ids['digest']}.eml"
    dl.value.save_as(tmp_path / "m.eml")
    assert (tmp_path / "m.eml").read_bytes() == raw
    with page.expect_download() as dl:
        page.click("#dl-text")
    dl.value.save_as(tmp_path / "m.txt")
    assert "Alice, Bob and Chen commented" in (tmp_path / "m.txt").read_text()
    assert page.locator("#dl-html").is_hidden()  # a text-only message has no HTML to download
    assert page.locator("#pane-text").is_visible()  # and opens on its text

    open_message(page, ui, ids["order"], "Your order #1042 has shipped 📦")
    assert page.locator("#reply-to-label").is_hidden() and page.locator("#unsub-label").is_hidden()
    with page.expect_download() as dl:
        page.click("#dl-html")
    dl.value.save_as(tmp_path / "m.html")
    assert "Your order is on its way" in (tmp_path / "m.html").read_text()

    # the HTML source, highlighted (and shown as text, not run)
    page.click("#tab-htmlsrc")
    assert page.locator("#pane-htmlsrc").is_visible()
    assert page.locator("#pane-htmlsrc .hl-tag", has_text="<h1").count() == 1
    assert page.locator("#pane-htmlsrc .hl-attr", has_text="style").count() >= 1
    assert page.locator("#pane-htmlsrc .hl-str").first.inner_text().startswith('"')
    assert page.locator("#pane-htmlsrc h1").count() == 0
    shoot(page, "82-htmlsrc")

    # attachments: the image as a thumbnail, the PDF as an icon
    open_message(page, ui, ids["invoice"], "Invoice INV-2026-031")
    img = page.locator("#attachments img.thumb")
    assert img.get_attribute("alt") == "logo.png"
    wait_for(lambda: img.evaluate("i => i.complete && i.naturalWidth") == 16, what="thumbnail loaded")
    assert page.locator("#attachments .thumb.icon").count() == 1
    assert "INV-2026-031.pdf" in page.locator("#attachments").inner_text()
    shoot(page, "82-attachments")


def test_tags_and_the_sidebar(ui, page):
    ids = seed_demo(ui)
    open_message(page, ui, ids["digest"], "Weekly digest: 3 new comments 💬")
    editor = page.locator('input[placeholder*="tag"]')
    editor.fill("newsletter")
    editor.press("Enter")
    page.locator('#msg-tags .tag[data-tag="newsletter"]').wait_for()
    wait_for(lambda: tags_of(ui, ids["digest"]) == ["newsletter"], what="tag saved")
    editor.fill("weekly")
    editor.press("Enter")
    wait_for(lambda: sorted(tags_of(ui, ids["digest"])) == ["newsletter", "weekly"], what="second tag")
    page.locator(f'#list li[data-id="{ids["digest"]}"] .tag', has_text="weekly").wait_for()

    open_message(page, ui, ids["welcome"], "Welcome aboard 🎉")
    editor.fill("newsletter")
    editor.press("Enter")
    entry = page.locator('#tag-nav button[data-tag="newsletter"]')
    wait_for(lambda: entry.locator(".count").inner_text() == "2", what="sidebar count")
    assert page.locator('#tag-nav button[data-tag="weekly"] .count').inner_text() == "1"
    shoot(page, "82-tags")

    entry.click()  # click to filter
    wait_for(lambda: page.evaluate("location.pathname + location.search") == "/search?q=" + quote("tag:newsletter", safe=""),
             what="tag search URL")
    wait_for(lambda: page.locator("#list li").count() == 2, what="tagged messages only")
    wait_for(lambda: "active" in (entry.get_attribute("class") or ""), what="the tag marked active")
    page.locator('#tag-nav button[data-tag="All messages"]').click()
    wait_for(lambda: page.locator("#list li").count() == 6, what="all again")

    open_message(page, ui, ids["digest"], "Weekly digest: 3 new comments 💬")
    page.click('#msg-tags button[aria-label="remove tag weekly"]')
    wait_for(lambda: tags_of(ui, ids["digest"]) == ["newsletter"], what="tag removed")
    page.locator('#tag-nav button[data-tag="weekly"]').wait_for(state="detached")


def test_tag_chips_on_a_phone(ui, page):
    ids = seed_demo(ui)
    ui.api.put("/api/v1/tags", json={"IDs": [ids["order"], ids["invoice"]], "Tags": ["shop"]}).raise_for_status()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(ui.base + "/")
    chip = page.locator("#tag-chips button", has_text="shop 2")
    chip.wait_for()
    assert page.locator("#tags-pane").is_hidden()
    chip.click()
    wait_for(lambda: page.locator("#list li").count() == 2, what="filtered on the phone")
