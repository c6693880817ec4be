"""Scenario 64w: hostile messages in capture mode (issue 11, items 15 and 11) — `courrier serve --capture` always
starts, lists every message it accepted (with an error mark when its MIME could be read only in part), and the web
API answers every one of them without a 5xx.

The messages are tests/data/hostile/*.eml, delivered over SMTP with smtplib and also dropped into the capture Maildir
byte for byte (the path a restart's scan adopts); the index is then deleted and rebuilt at the next start — the path
that used to die on the 1,000-level message (RecursionError) until the file was removed by hand.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.capture_support import send
from tests.web.shapes import Shapes

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"
CORPUS = sorted(HOSTILE.glob("*.eml"))


@pytest.fixture(scope="module")
def shapes() -> Shapes:
    return Shapes()


def client(srv) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=30)


def wait_total(c: httpx.Client, n: int, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = c.get("/api/v1/messages", params={"limit": 500}).json()
        if data["total"] == n or time.monotonic() > deadline:
            assert data["total"] == n, [m["Subject"][:40] for m in data["messages"]]
            return data
        time.sleep(0.05)


def drop_index(srv) -> None:
    """The index is a cache of the Maildir files (capture/store.py): without it the next start re-indexes them all."""
    for suffix in ("", "-wal", "-shm"):
        p = srv.data / f"courrier.db{suffix}"
        if p.exists():
            p.unlink()


def parse_errors(c: httpx.Client, ids: list[str]) -> dict[str, str]:
    r = c.get("/api/courrier/parse-errors", params=[("id", i) for i in ids])
    assert r.status_code == 200, r.text
    return r.json()["Errors"]


def test_deep_nesting_is_listed_with_an_error_mark_and_never_stops_a_start(server_factory, shapes):
    deep = (HOSTILE / "deep-multipart-1000.eml").read_bytes()
    assert len(deep) <= 64 * 1024 and deep.count(b"multipart/mixed") == 1000
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    before = send(srv.ports["smtp"], ["bob@example.test"], b"Subject: before\r\n\r\nfine\r\n")
    deep_id = send(srv.ports["smtp"], ["bob@example.test"], deep)  # 250 with its ID: accepted, stored whole
    after = send(srv.ports["smtp"], ["bob@example.test"], b"Subject: after\r\n\r\nfine too\r\n")

    def check(c: httpx.Client) -> None:
        listing = wait_total(c, 3)
        shapes.check(listing, shapes.response("/api/v1/messages", "get"))  # Mailpit's JSON keeps its exact shape
        assert {m["ID"]: m["Subject"] for m in listing["messages"]} == {
            before: "before", deep_id: "nested multipart x1000", after: "after"}
        errors = parse_errors(c, [before, deep_id, after])
        assert list(errors) == [deep_id] and "nested deeper than 100" in errors[deep_id]
        env = c.get(f"/api/courrier/message/{deep_id}/envelope").json()
        assert "nested deeper than 100" in env["ParseError"]
        assert c.get(f"/api/courrier/message/{before}/envelope").json()["ParseError"] == ""
        msg = c.get(f"/api/v1/message/{deep_id}")
        assert msg.status_code == 200
        shapes.check(msg.json(), shapes.definition("Message"))
        assert msg.json()["From"]["Address"] == "hostile@sender.test"
        raw = c.get(f"/api/v1/message/{deep_id}/raw")
        added = f"Message-ID: <{deep_id}@mailpit>\n".encode()  # it had none (Mailpit's smtpd.go adds one)
        assert raw.status_code == 200 and raw.content.replace(b"\r\n", b"\n").rstrip() == added + deep.rstrip()
        for path in (f"/api/v1/message/{deep_id}/headers", f"/view/{deep_id}.txt",
                     f"/api/v1/message/{deep_id}/part/1", f"/api/v1/message/{deep_id}/part/1.1.1.1",
                     f"/api/courrier/message/{deep_id}/html", "/api/v1/search?query=nested",
                     "/api/v1/search?query=innermost"):
            assert c.get(path).status_code < 500, path

    with client(srv) as c:
        check(c)
    srv.stop()
    drop_index(srv)  # the next start re-indexes every file, the deep one included
    srv.start()
    assert deep_id in srv.wait_log("capture.parse_error")  # logged with its id
    with client(srv) as c:
        check(c)
        # a re-index of a running server (the housekeeping scan's path) goes through the same file
    srv.stop()
    srv.start()  # and a plain restart on the rebuilt index
    with client(srv) as c:
        check(c)


def test_every_hostile_message_is_kept_listed_and_served_without_5xx(server_factory, shapes):
    """Each corpus message twice: over SMTP (smtplib, CRLF) and as the exact file in capture/new (adopted by the
    scan of the next start, after the index is dropped). Every message-level endpoint answers < 500 for each."""
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    # SMTP itself refuses lines over 1000 octets (RFC 5321 §4.5.3.1.6): those reach the Maildir another way only.
    over_smtp = [p for p in CORPUS if max(len(line) for line in p.read_bytes().split(b"\n")) <= 998]
    assert len(over_smtp) >= len(CORPUS) - 1
    sent = {send(srv.ports["smtp"], ["victim@example.test"], p.read_bytes()): p.name for p in over_smtp}
    with client(srv) as c:
        wait_total(c, len(over_smtp))
    srv.stop()
    for p in CORPUS:
        shutil.copy(p, srv.data / "capture" / "new" / f"1700000000.hostile-{p.stem}.test")
    drop_index(srv)
    srv.start()
    with client(srv) as c:
        listing = wait_total(c, len(over_smtp) + len(CORPUS))
        shapes.check(listing, shapes.response("/api/v1/messages", "get"))
        ids = [m["ID"] for m in listing["messages"]]
        assert set(sent) <= set(ids)  # IDs survive the rebuild
        errors = parse_errors(c, ids)
        marked = {sent[i] for i in errors if i in sent}
        assert {"deep-multipart-1000.eml", "deep-rfc822-300.eml", "many-parts-12000.eml"} <= marked, errors
        for mid in ids:
            r = c.get(f"/api/v1/message/{mid}")
            assert r.status_code == 200, (mid, r.status_code, r.text[:200])
            msg = r.json()
            shapes.check(msg, shapes.definition("Message"))
            paths = [f"/api/v1/message/{mid}/headers", f"/api/v1/message/{mid}/raw", f"/view/{mid}.txt",
                     f"/view/{mid}.html", f"/api/courrier/message/{mid}/envelope", f"/api/courrier/message/{mid}/html"]
            paths += [f"/api/v1/message/{mid}/part/{a['PartID']}" for a in msg["Attachments"] + msg["Inline"]]
            for path in paths:
                got = c.get(path)
                assert got.status_code < 500, (path, got.status_code, got.text[:200])
        for q in ("nested", "is:unread", "has:attachment", "larger:1k", "subject:meta", "crème"):
            assert c.get("/api/v1/search", params={"query": q}).status_code == 200, q
        assert c.get("/livez").text == "ok"


def test_server_mode_lists_an_accounts_hostile_mail_without_5xx(server_factory, shapes):
    """Server mode reads the accounts' Maildirs (web/mailboxes.py): the same messages, delivered by the MX role."""
    import smtplib

    srv = server_factory(listeners=("smtp", "http"))
    srv.add_user("admin@example.test", "adminpw", "--admin")
    srv.add_user("bob@example.test", "bobpw")
    srv.start()
    names = ["deep-multipart-1000.eml", "deep-rfc822-300.eml", "unknown-charset.eml", "date-out-of-range.eml",
             "many-parts-12000.eml", "nul-bytes.eml", "unclosed-boundary.eml"]
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
        for name in names:
            assert s.sendmail("app@sender.test", ["bob@example.test"], (HOSTILE / name).read_bytes()) == {}
    box = {"mailbox": "bob@example.test/INBOX"}
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", auth=("admin@example.test", "adminpw"),
                      timeout=30) as c:
        deadline = time.monotonic() + 20
        while (r := c.get("/api/v1/messages", params=box)).json().get("total") != len(names):
            assert r.status_code == 200 and time.monotonic() < deadline, r.text
            time.sleep(0.1)
        listing = r.json()
        shapes.check(listing, shapes.response("/api/v1/messages", "get"))
        assert len(listing["messages"]) == len(names)  # none skipped: each one parsed as far as it goes
        by_subject = {m["Subject"]: m["ID"] for m in listing["messages"]}
        errors = parse_errors(c, list(by_subject.values()))
        assert set(errors) == {by_subject["nested multipart x1000"], by_subject["nested message/rfc822 x300"],
                               by_subject["12000 sibling parts"]}
        for q in ("nested", "larger:1k", "innermost", "crème"):
            assert c.get("/api/v1/search", params={**box, "query": q}).status_code == 200, q
        for mid in by_subject.values():
            r = c.get(f"/api/v1/message/{mid}")
            assert r.status_code == 200, (mid, r.text[:200])
            shapes.check(r.json(), shapes.definition("Message"))
            for path in (f"/api/v1/message/{mid}/headers", f"/api/v1/message/{mid}/part/1", f"/view/{mid}.html",
                         f"/api/courrier/message/{mid}/envelope"):
                assert c.get(path).status_code < 500, path
