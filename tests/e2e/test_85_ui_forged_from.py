"""Scenario 85: the forged-From marker compares organisational domains (public suffix list, RFC 7489 §3.2) — in
the API (``OrgMismatch``) and in Chromium (red only for another organisation, a quiet note for the same one)."""

from __future__ import annotations

from tests.e2e.ui_support import mail, send, shoot, wait_for

CASES = [  # (MAIL FROM, header From, another organisation?)
    ("bounce@news.example.com", "news@example.com", False),
    ("bounce@mail.example.co.uk", "shop@example.co.uk", False),   # co.uk is a public suffix: one organisation
    ("a@foo.co.uk", "b@bar.co.uk", True),                           # two organisations under co.uk
    ("app@alice.github.io", "app@bob.github.io", True),             # a private suffix of the list
    ("news@example.com", "news@example.com", False),
    ("phisher@evil.example", "security@bank.example", True),
]


def test_org_domains_in_the_api(ui):
    ui.clear()
    for mail_from, header_from, other in CASES:
        msg_id = send(ui, mail(f"{mail_from} as {header_from}", sender=header_from), mail_from=mail_from)
        env = ui.api.get(f"/api/courrier/message/{msg_id}/envelope").json()
        assert env["OrgMismatch"] is other, (mail_from, header_from)
        assert env["FromMismatch"] is (mail_from != header_from)  # the exact comparison keeps its meaning


def test_marker_in_chromium(ui, page):
    same = send(ui, mail("Our newsletter", sender="News <news@example.com>"), mail_from="bounce@news.example.com")
    forged = send(ui, mail("Verify your account", sender="Bank <security@bank.example>"),
                  mail_from="phisher@evil.example")
    page.goto(f"{ui.base}/view/{same}")
    wait_for(lambda: page.locator("#msg-subject").inner_text() == "Our newsletter", what="open")
    assert "mismatch" not in (page.get_attribute("#env-from", "class") or "")
    assert page.locator("#mismatch-note").is_hidden() and page.locator("#same-org-note").is_visible()
    shoot(page, "85-same-organisation")
    page.goto(f"{ui.base}/view/{forged}")
    wait_for(lambda: page.locator("#msg-subject").inner_text() == "Verify your account", what="open forged")
    assert "mismatch" in (page.get_attribute("#env-from", "class") or "")
    assert page.locator("#mismatch-note").is_visible() and page.locator("#same-org-note").is_hidden()
    shoot(page, "85-forged")
