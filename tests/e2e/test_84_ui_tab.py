"""Scenario 84: what the browser tab shows, in real Chromium — a favicon drawn with the unread count (and the count
in the title), browser notifications for new mail once the user turns them on (clicking one opens the message),
and emoji and CJK text drawn with real glyphs (the fonts the Makefile installs, named in the UI's font stack)."""

from __future__ import annotations

from tests.e2e.ui_support import mail, new_page, seed_demo, send, shoot, wait_for

BADGE_JS = """async () => {
  const link = document.querySelector('link[rel="icon"]');
  const img = new Image(); img.src = link.href; await img.decode();
  const c = document.createElement("canvas"); c.width = c.height = 64;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0, 64, 64);
  const [r, gr, b] = g.getImageData(60, 20, 1, 1).data;  // the badge's right edge, outside the digits
  return {unread: link.dataset.unread, red: r > 180 && gr < 90 && b < 90, title: document.title};
}"""

# Draws text with the page's own font stack; "real glyphs" = it differs from what a code point that no font has
# (U+F0000, private use) draws (the .notdef box), and the emoji has colour.
GLYPHS_JS = """(text) => {
  const font = "32px " + getComputedStyle(document.body).fontFamily;
  const draw = (s) => { const c = document.createElement("canvas"); c.width = 200; c.height = 48;
    const g = c.getContext("2d"); g.font = font; g.fillStyle = "#000"; g.textBaseline = "top"; g.fillText(s, 4, 4);
    return g.getImageData(0, 0, 200, 48).data; };
  const tofu = draw("\\u{F0000}"), got = draw(text);
  let diff = 0, colour = 0;
  for (let i = 0; i < got.length; i += 4) {
    if (got[i + 3] !== tofu[i + 3]) diff++;
    if (got[i + 3] > 0 && (Math.abs(got[i] - got[i + 1]) > 40 || Math.abs(got[i + 1] - got[i + 2]) > 40)) colour++;
  }
  return {diff, colour};
}"""


def test_favicon_counts_unread(ui, page):
    ids = seed_demo(ui)
    page.goto(ui.base + "/")
    page.wait_for_selector("#status.live")
    wait_for(lambda: page.evaluate(BADGE_JS)["unread"] == "6", what="favicon with 6 unread")
    badge = page.evaluate(BADGE_JS)
    assert badge["red"] and badge["title"].startswith("(6) ")
    page.locator(f'#list li[data-id="{ids["order"]}"]').click()
    wait_for(lambda: page.evaluate(BADGE_JS)["unread"] == "5", what="one read")
    send(ui, mail("One more"))
    wait_for(lambda: page.evaluate(BADGE_JS)["unread"] == "6", what="new mail counted live")
    page.click("#mark-all-read")
    wait_for(lambda: page.evaluate(BADGE_JS)["unread"] == "0", what="all read")
    badge = page.evaluate(BADGE_JS)
    assert not badge["red"] and not badge["title"].startswith("(")


def test_notifications_when_turned_on(ui, browser):
    ui.clear()
    page = new_page(browser)
    try:
        page.context.grant_permissions(["notifications"], origin=ui.base)
        # records each notification the page creates (headless Chromium shows none a test could see)
        page.add_init_script("""(() => {
          const Real = window.Notification; window.__shown = [];
          class Spy extends Real { constructor(title, opts) { super(title, opts); window.__shown.push(this); } }
          Object.defineProperty(Spy, "permission", { get: () => Real.permission });
          Spy.requestPermission = (...a) => Real.requestPermission(...a);
          window.Notification = Spy;
        })()""")
        page.goto(ui.base + "/")
        page.wait_for_selector("#status.live")
        send(ui, mail("Before turning on"))
        page.locator("#list li", has_text="Before turning on").wait_for()
        assert page.evaluate("window.__shown.length") == 0
        page.click("#notify-toggle")
        wait_for(lambda: page.get_attribute("#notify-toggle", "aria-pressed") == "true", what="turned on")
        msg_id = send(ui, mail("Build 512 passed ✅", sender="CI <ci@build.example>"))
        wait_for(lambda: page.evaluate("window.__shown.length") == 1, what="a notification")
        shown = page.evaluate("({title: __shown[0].title, body: __shown[0].body, tag: __shown[0].tag})")
        assert shown == {"title": "Build 512 passed ✅", "body": "From CI <ci@build.example>", "tag": msg_id}
        page.evaluate("__shown[0].onclick()")
        wait_for(lambda: page.evaluate("location.pathname") == f"/view/{msg_id}", what="click opens it")
        page.reload()  # the choice is remembered
        page.wait_for_selector("#status.live")
        assert page.get_attribute("#notify-toggle", "aria-pressed") == "true"
        page.click("#notify-toggle")
        send(ui, mail("After turning off"))
        page.locator("#list li", has_text="After turning off").wait_for()
        assert page.evaluate("window.__shown.length") == 0  # (a new page: the reload reset the record)
    finally:
        page.context.close()


def test_emoji_and_cjk_have_glyphs(ui, page):
    ids = seed_demo(ui)
    page.goto(f"{ui.base}/view/{ids['cjk']}")
    page.wait_for_selector("#view:not([hidden])")
    for text in ("ようこそ", "東京ストア", "欢迎使用", "한국어"):
        assert page.evaluate(GLYPHS_JS, text)["diff"] > 50, text
    emoji = page.evaluate(GLYPHS_JS, "🎉📦")
    assert emoji["diff"] > 50 and emoji["colour"] > 50
    assert "Noto Color Emoji" in page.evaluate("getComputedStyle(document.body).fontFamily")
    shoot(page, "84-cjk-emoji")
