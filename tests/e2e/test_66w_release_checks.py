"""Scenario 66w: release is checked like a submission (issue 11, item 17): IP-literal domains, source routes and
more than `[limits] max_recipients` are refused with 400, `[capture] release_allowed` must match every bare address
(one refused recipient fails the whole release), `Name <addr>` is accepted, and the copy that reaches the next hop
(a second courrier in capture mode, as smarthost) has no `Bcc:` field and a new `Date:`."""

from __future__ import annotations

import time

import httpx

from tests.e2e.capture_support import send

MESSAGE = (b"From: Shop <shop@sender.test>\r\nTo: customer@example.test\r\nBcc: secret-auditor@hidden.test,\r\n"
           b" other-hidden@hidden.test\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\nSubject: your order\r\n\r\n"
           b"Bcc: this line is body text and stays\r\n")


def client(srv) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=30)


def test_release_recipients_are_checked_and_the_copy_loses_bcc(server_factory):
    sink = server_factory("sink", listeners=("smtp", "http"), capture=True, hostname="sink.example.test").start()
    main = server_factory("main", listeners=("smtp", "http"), capture=True, sections={
        "delivery": {"smarthost": f"127.0.0.1:{sink.ports['smtp']}"},
        "limits": {"max_recipients": 3},
        "capture": {"release_allowed": r"@(allowed|also-allowed)\.test$"}}).start()
    mid = send(main.ports["smtp"], ["customer@example.test", "secret-auditor@hidden.test"], MESSAGE)
    with client(main) as c, client(sink) as s:
        time.sleep(0.2)
        assert c.get("/api/v1/webui").json()["MessageRelay"]["AllowedRecipients"] == r"@(allowed|also-allowed)\.test$"
        refused = {
            "a@[127.0.0.1]": "IP-literal", "Bob <a@[IPv6:::1]>": "IP-literal", "<@relay.test:a@allowed.test>":
            "source route", "@relay.test,@b.test:a@allowed.test": "source route", "no@other.test": "release_allowed",
            "x@allowed.test.evil.test": "release_allowed", "a@allowed.test, b@allowed.test": "invalid",
            "a\r\nb@allowed.test": "invalid", "not-an-address": "invalid"}
        for rcpt, why in refused.items():
            r = c.post(f"/api/v1/message/{mid}/release", json={"To": ["ok@allowed.test", rcpt]})
            assert r.status_code == 400 and why in r.text, (rcpt, r.status_code, r.text)
        many = [f"u{i}@allowed.test" for i in range(4)]
        r = c.post(f"/api/v1/message/{mid}/release", json={"To": many})
        assert r.status_code == 400 and "max_recipients" in r.text
        time.sleep(1)
        assert s.get("/api/v1/messages").json()["total"] == 0  # nothing of the refused releases left
        r = c.post(f"/api/v1/message/{mid}/release",
                   json={"To": ["Ok Person <ok@allowed.test>", "second@also-allowed.test", "OK@allowed.test"]})
        assert r.status_code == 200 and r.text == "ok", r.text
        deadline = time.monotonic() + 30
        while (listing := s.get("/api/v1/messages").json())["total"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        released = listing["messages"][0]
        env = s.get(f"/api/courrier/message/{released['ID']}/envelope").json()
        assert env["RcptTo"] == ["ok@allowed.test", "second@also-allowed.test"]
        raw = s.get(f"/api/v1/message/{released['ID']}/raw").content
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"bcc" not in head.lower() and b"hidden.test" not in head  # the hidden recipients stay hidden
        assert b"Bcc: this line is body text and stays" in body
        assert b"Date: Mon, 1 Jan 2001" not in head and head.count(b"\nDate: ") + head.startswith(b"Date: ") == 1
        assert b"Subject: your order" in head and b"To: customer@example.test" in head
        assert s.get(f"/api/v1/message/{released['ID']}").json()["Bcc"] == [
            {"Name": "", "Address": "ok@allowed.test"}, {"Name": "", "Address": "second@also-allowed.test"}]
