"""Scenario 86: ``GET /api/courrier/wait?query=Q&timeout=S`` — the long poll test suites use instead of polling:
an existing match at once, a match that arrives later as soon as it does (a non-matching arrival does not end the
wait), 408 with a JSON error on timeout, 400 for a bad timeout or search, and the same in server mode
(``?mailbox=``)."""

from __future__ import annotations

import threading
import time

import httpx

from tests.e2e.test_66_server_inspector import ADMIN, BOB, BOB_INBOX, deliver
from tests.e2e.ui_support import mail, send


def later(seconds: float, fn, *args, **kw) -> threading.Thread:
    t = threading.Timer(seconds, fn, args, kw)
    t.start()
    return t


def test_wait_in_capture_mode(ui):
    ui.clear()
    t0 = time.monotonic()
    r = ui.api.get("/api/courrier/wait", params={"query": "subject:receipt", "timeout": "0.5"})
    assert r.status_code == 408 and "subject:receipt" in r.json()["Error"]
    assert 0.45 <= time.monotonic() - t0 < 3

    first = send(ui, mail("Your receipt", sender="Shop <shop@example.com>"))
    r = ui.api.get("/api/courrier/wait", params={"query": "subject:receipt", "timeout": "5"})
    assert r.status_code == 200
    summary = r.json()
    assert summary["ID"] == first and summary["Subject"] == "Your receipt"
    assert summary["From"] == {"Name": "Shop", "Address": "shop@example.com"}
    assert {"To", "Created", "Read", "Tags", "Size", "Snippet"} <= set(summary)

    # arriving while it waits: a non-matching message first, then the one asked for
    other = later(0.3, send, ui, mail("Something else"))
    wanted = {}
    t = later(0.9, lambda: wanted.setdefault("id", send(ui, mail("Password reset for dev", to="dev@example.test"))))
    t0 = time.monotonic()
    r = ui.api.get("/api/courrier/wait", params={"query": 'subject:"password reset"', "timeout": "10"})
    elapsed = time.monotonic() - t0
    other.join(), t.join()
    assert r.status_code == 200 and r.json()["ID"] == wanted["id"]
    assert 0.8 <= elapsed < 5

    # no query: any message; while the store is empty it waits
    ui.clear()
    later(0.3, send, ui, mail("Anything"))
    r = ui.api.get("/api/courrier/wait", params={"timeout": "10"})
    assert r.status_code == 200 and r.json()["Subject"] == "Anything"

    for bad in ("-1", "soon", "nan", "inf"):
        r = ui.api.get("/api/courrier/wait", params={"timeout": bad})
        assert r.status_code == 400 and "timeout" in r.json()["Error"], bad
    r = ui.api.get("/api/courrier/wait", params={"query": "larger:99999999999999999999G", "timeout": "1"})
    assert r.status_code == 400 and r.json()["Error"]
    # a timeout beyond the bound is read as the bound: an existing match still answers at once
    assert ui.api.get("/api/courrier/wait", params={"timeout": "1e9"}).status_code == 200


def test_wait_in_server_mode(server_factory):
    srv = server_factory(listeners=("smtp", "http"))
    srv.add_user(ADMIN[0], ADMIN[1], "--admin")
    srv.add_user(BOB, "bobpw")
    srv.start()
    base = f"http://127.0.0.1:{srv.ports['http']}"
    with httpx.Client(base_url=base, auth=ADMIN, timeout=15) as c:
        r = c.get("/api/courrier/wait", params={**BOB_INBOX, "query": "subject:invoice", "timeout": "0.3"})
        assert r.status_code == 408
        later(0.4, deliver, srv, "monthly invoice")
        r = c.get("/api/courrier/wait", params={**BOB_INBOX, "query": "subject:invoice", "timeout": "10"})
        assert r.status_code == 200 and r.json()["Subject"] == "monthly invoice"
        r = c.get("/api/courrier/wait", params={"mailbox": "nobody@example.test/INBOX", "timeout": "1"})
        assert r.status_code in (400, 404) and r.json()["Error"]
