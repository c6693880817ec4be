"""Scenario 83: bulk actions in real Chromium — on a selection (checkboxes, select-all, x), or else on every message
of the current search: "Mark all read" and "Delete all" respect the search, and a search closes a message that is
not among its results."""

from __future__ import annotations

from tests.e2e.ui_support import seed_demo, shoot, wait_for


def read_state(ui) -> dict[str, bool]:
    return {m["Subject"]: m["Read"] for m in ui.api.get("/api/v1/messages").json()["messages"]}


def test_bulk_on_the_search(ui, page):
    ids = seed_demo(ui)
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{ui.base}/view/{ids['forged']}")
    page.wait_for_selector("#view:not([hidden])")
    page.wait_for_selector("#status.live")
    page.fill("#search", "from:shop.example")
    page.press("#search", "Enter")
    wait_for(lambda: page.locator("#list li").count() == 2, what="search results")
    assert page.locator("#view").is_hidden()  # the forged message is not among the results: closed
    assert page.locator("#mark-all-read").inner_text() == "Mark 2 found read"
    assert page.locator("#delete-all").inner_text() == "Delete 2 found"
    shoot(page, "83-search-bulk")

    page.click("#mark-all-read")
    wait_for(lambda: read_state(ui)["Invoice INV-2026-031"], what="found marked read")
    state = read_state(ui)
    assert state["Your order #1042 has shipped 📦"] is True
    assert state["Welcome aboard 🎉"] is False and state["Verify your account"] is True  # opened earlier
    assert [k for k, v in state.items() if not v] == ["Weekly digest: 3 new comments 💬",
                                                      "ようこそ！アカウントが作成されました", "Welcome aboard 🎉"]

    page.click("#delete-all")
    wait_for(lambda: len(ui.ids()) == 4, what="only the found messages deleted")
    assert ids["order"] not in ui.ids() and ids["invoice"] not in ui.ids()
    wait_for(lambda: page.locator("#list li").count() == 0, what="empty results")
    assert page.locator("#delete-all").is_disabled()


def test_bulk_on_a_selection(ui, page):
    ids = seed_demo(ui)
    page.goto(ui.base + "/")
    page.wait_for_selector("#status.live")
    page.locator("#list li").nth(5).wait_for()
    page.locator(f'#list li[data-id="{ids["welcome"]}"] .pick').check()
    page.locator(f'#list li[data-id="{ids["cjk"]}"] .pick').check()
    assert page.locator("#bulk-scope").inner_text() == "2 selected"
    assert page.locator("#delete-all").is_hidden() and page.locator("#bulk-delete").is_visible()
    assert page.locator("#view").is_hidden()  # ticking a box opens nothing
    shoot(page, "83-selection")
    page.click("#bulk-read")
    wait_for(lambda: read_state(ui)["Welcome aboard 🎉"], what="selection marked read")
    assert read_state(ui)["Invoice INV-2026-031"] is False
    wait_for(lambda: page.locator("#bulk-scope").inner_text() == "", what="selection cleared")

    # x ticks the open message; Delete then deletes the selection
    page.locator(f'#list li[data-id="{ids["digest"]}"]').click()
    page.wait_for_selector("#view:not([hidden])")
    page.keyboard.press("x")
    page.locator(f'#list li[data-id="{ids["invoice"]}"] .pick').check()
    assert page.locator("#bulk-scope").inner_text() == "2 selected"
    page.keyboard.press("Delete")
    wait_for(lambda: len(ui.ids()) == 4, what="selection deleted")
    assert ids["digest"] not in ui.ids() and ids["invoice"] not in ui.ids()
    wait_for(lambda: page.locator("#view").is_hidden(), what="the deleted open message closed")

    wait_for(lambda: page.locator("#list li").count() == 4, what="list without the deleted")
    page.locator("#select-all").check()
    assert page.locator("#bulk-scope").inner_text() == "4 selected"
    page.click("#bulk-unread")
    wait_for(lambda: not any(read_state(ui).values()), what="all marked unread")
