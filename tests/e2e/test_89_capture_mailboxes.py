"""Scenario 89: mailboxes per SMTP user or recipient in capture mode (issue 14). Real smtplib clients send to several
envelope recipients, with and without SMTP AUTH (submission, STARTTLS); a message belongs to the mailbox of each
envelope recipient (bare, lowercased) and of its AUTH user. ``?mailbox=`` restricts list, search, ``latest``, bulk
read/delete and ``/api/events``; ``/api/courrier/mailboxes`` lists the mailboxes with total/unread counts; the UI's
picker shows only the chosen mailbox's messages (Chromium, screenshot in tests/artifacts/)."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.ui_support import new_page, shoot, wait_for
from tests.support import Server


@pytest.fixture(scope="module")
def cap(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("cmbox"), listeners=("smtp", "submission", "http"), capture=True).start()
    api = httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10)
    yield srv, api
    api.close()
    srv.stop()


def message(subject: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "App <app@shop.example>", "list@shop.example", subject
    m.set_content("hello")
    return m.as_bytes()


def deliver(srv: Server, subject: str, rcpts: list[str], user: str | None = None) -> None:
    """Port 25 without AUTH, or the submission port with STARTTLS and AUTH as ``user`` (capture accepts any)."""
    if user is None:
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
            assert c.sendmail("app@shop.example", rcpts, message(subject)) == {}
        return
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as c:
        c.starttls(context=tls)
        c.login(user, "any password")
        assert c.sendmail("app@shop.example", rcpts, message(subject)) == {}


def subjects(api: httpx.Client, mailbox: str, query: str = "") -> set[str]:
    r = (api.get("/api/v1/search", params={"query": query, "mailbox": mailbox}) if query
         else api.get("/api/v1/messages", params={"mailbox": mailbox}))
    r.raise_for_status()
    return {m["Subject"] for m in r.json()["messages"]}


def seed(srv: Server, api: httpx.Client) -> None:
    api.delete("/api/v1/messages").raise_for_status()
    deliver(srv, "Welcome Alice", ["Alice@Example.test"])
    deliver(srv, "Team news", ["alice@example.test", "bob@example.test"])
    deliver(srv, "Bob invoice", ["bob@example.test"])
    deliver(srv, "Sent by the app", ["carol@example.test"], user="app-sender")
    wait_for(lambda: len(api.get("/api/v1/messages").json()["messages"]) == 4, what="4 captured")


def test_mailbox_filter_on_the_api(cap):
    srv, api = cap
    seed(srv, api)
    assert subjects(api, "alice@example.test") == {"Welcome Alice", "Team news"}
    assert subjects(api, "ALICE@example.test") == {"Welcome Alice", "Team news"}  # any case
    assert subjects(api, "bob@example.test") == {"Team news", "Bob invoice"}
    assert subjects(api, "app-sender") == {"Sent by the app"}  # the SMTP AUTH user's mailbox
    assert subjects(api, "carol@example.test") == {"Sent by the app"}  # and its recipient's
    assert subjects(api, "nobody@example.test") == set()
    assert subjects(api, "bob@example.test", "subject:invoice") == {"Bob invoice"}
    assert subjects(api, "alice@example.test", "subject:invoice") == set()

    page = api.get("/api/v1/messages", params={"mailbox": "bob@example.test"}).json()
    assert page["total"] == page["messages_count"] == 2 and page["unread"] == 2

    listing = api.get("/api/courrier/mailboxes").json()
    assert listing["Mode"] == "capture"
    assert listing["Mailboxes"] == [
        {"Name": "alice@example.test", "Total": 2, "Unread": 2},
        {"Name": "app-sender", "Total": 1, "Unread": 1},
        {"Name": "bob@example.test", "Total": 2, "Unread": 2},
        {"Name": "carol@example.test", "Total": 1, "Unread": 1},
    ]

    r = api.get("/api/v1/message/latest", params={"mailbox": "alice@example.test"})
    assert r.status_code == 200 and r.json()["Subject"] == "Team news"
    assert api.get("/api/v1/message/latest", params={"mailbox": "nobody@example.test"}).status_code == 404

    # bulk read of one mailbox leaves the others unread
    r = api.put("/api/v1/messages", params={"mailbox": "alice@example.test"}, json={"Read": True})
    assert r.status_code == 200
    counts = {m["Name"]: m["Unread"] for m in api.get("/api/courrier/mailboxes").json()["Mailboxes"]}
    assert counts == {"alice@example.test": 0, "app-sender": 1, "bob@example.test": 1, "carol@example.test": 1}
    r = api.put("/api/v1/messages", params={"mailbox": "bob@example.test"},
                json={"Read": True, "Search": "subject:invoice"})
    assert r.status_code == 200
    assert api.get("/api/v1/messages", params={"mailbox": "bob@example.test"}).json()["unread"] == 0
    assert api.get("/api/v1/messages").json()["unread"] == 1  # only the app's message is still unread

    # delete by search, then delete all, within a mailbox
    assert api.delete("/api/v1/search", params={"query": "subject:news", "mailbox": "bob@example.test"}
                      ).status_code == 200
    assert subjects(api, "") == {"Welcome Alice", "Bob invoice", "Sent by the app"}
    assert api.request("DELETE", "/api/v1/messages", params={"mailbox": "alice@example.test"}).status_code == 200
    assert subjects(api, "") == {"Bob invoice", "Sent by the app"}


def test_mailbox_events(cap):
    srv, api = cap
    api.delete("/api/v1/messages").raise_for_status()
    url = f"ws://127.0.0.1:{srv.ports['http']}/api/events?mailbox=bob@example.test"
    with connect(url, open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["Type"] == "stats" and first["Data"]["Total"] == 0
        deliver(srv, "Not for Bob", ["alice@example.test"])
        deliver(srv, "For Bob", ["bob@example.test"])
        news = []
        while len(news) < 1:
            f = json.loads(ws.recv(timeout=10))
            if f["Type"] == "new":
                news.append(f["Data"]["Subject"])
            elif f["Type"] == "stats":
                assert f["Data"]["Total"] <= 1  # Bob's mailbox, not the store's
        assert news == ["For Bob"]


def test_mailbox_picker_in_chromium(cap, browser):
    srv, api = cap
    seed(srv, api)
    page = new_page(browser)
    try:
        base = f"http://127.0.0.1:{srv.ports['http']}"
        page.goto(base + "/")
        page.wait_for_selector("#status.live")
        wait_for(lambda: page.locator("#list li").count() == 4, what="4 messages listed")
        labels = page.locator("#mb-capture option").all_inner_texts()
        assert labels[0] == "All mailboxes" and "bob@example.test (2)" in labels and "app-sender (1)" in labels
        page.select_option("#mb-capture", "bob@example.test")
        titles = "Array.from(document.querySelectorAll('#list li')).map((li) => li.title).sort().join('|')"
        wait_for(lambda: page.evaluate(titles) == "Bob invoice|Team news", what="only Bob's messages")
        assert "mailbox=bob%40example.test" in page.evaluate("location.search")
        shoot(page, "capture-mailboxes")
        page.reload()  # the mailbox is in the URL: a reload keeps it
        page.wait_for_selector("#status.live")
        wait_for(lambda: page.locator("#list li").count() == 2, what="Bob's 2 after reload")
        assert page.locator("#mb-capture").input_value() == "bob@example.test"
        page.select_option("#mb-capture", "")
        wait_for(lambda: page.locator("#list li").count() == 4, what="all 4 again")
    finally:
        page.context.close()
