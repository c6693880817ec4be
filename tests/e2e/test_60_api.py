"""Scenario 60: the Mailpit-compatible API of `courrier serve --capture`, every endpoint of the contract, shapes
compared with Mailpit's swagger file (field names and JSON types)."""

from __future__ import annotations

import base64
import smtplib
import time
from email.message import EmailMessage

import httpx
import pytest

from tests.web.shapes import Shapes

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def shapes() -> Shapes:
    return Shapes()


@pytest.fixture
def capture(server_factory):
    return server_factory(listeners=("smtp", "http"), capture=True).start()


def client(srv) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10)


def rich_message() -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Alice Example <alice@sender.test>"
    m["To"] = "Bob <bob@example.test>"
    m["Cc"] = "carol@example.test"
    m["Reply-To"] = "replies@sender.test"
    m["Subject"] = "Quarterly report"
    m["Message-ID"] = "<q-report-1@sender.test>"
    m["X-Tags"] = "reports, q3"
    m["List-Unsubscribe"] = "<mailto:unsub@sender.test>, <https://sender.test/unsub>"
    m.set_content("Plain body of the report.")
    m.add_alternative('<p>HTML body <img src="cid:logo@sender.test"></p>', subtype="html")
    m.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@sender.test>", filename="logo.png",
                                 disposition="inline")
    m.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="figures.csv")
    return m


def smtp_send(srv, msg: EmailMessage | bytes, sender: str = "bounce@sender.test",
              rcpts: tuple[str, ...] = ("bob@example.test", "carol@example.test", "dave@hidden.test")) -> None:
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        data = msg.as_bytes() if isinstance(msg, EmailMessage) else msg
        assert c.sendmail(sender, list(rcpts), data) == {}


def wait_total(c: httpx.Client, n: int, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = c.get("/api/v1/messages").json()
        if data["total"] == n or time.monotonic() > deadline:
            assert data["total"] == n, data
            return data
        time.sleep(0.05)


def test_health_and_openapi(capture):
    with client(capture) as c:
        assert c.get("/livez").text == "ok"
        assert c.get("/readyz").status_code == 200
        doc = c.get("/api/openapi.json").json()
        assert "/api/v1/messages" in doc["paths"] and "/api/courrier/pause" in doc["paths"]


def test_every_endpoint_has_mailpit_shapes(capture, shapes):
    smtp_send(capture, rich_message())
    with client(capture) as c:
        listing = wait_total(c, 1)
        shapes.check(listing, shapes.response("/api/v1/messages", "get"))
        summary = listing["messages"][0]
        assert summary["Subject"] == "Quarterly report" and summary["Read"] is False
        assert summary["Attachments"] == 1 and sorted(summary["Tags"]) == ["q3", "reports"]
        mid = summary["ID"]

        info = c.get("/api/v1/info").json()
        shapes.check(info, shapes.response("/api/v1/info", "get"))
        assert info["Messages"] == 1 and info["Unread"] == 1 and info["Tags"] == {"q3": 1, "reports": 1}
        assert info["RuntimeStats"]["SMTPAccepted"] == 1

        shapes.check(c.get("/api/v1/webui").json(), shapes.response("/api/v1/webui", "get"))

        msg = c.get(f"/api/v1/message/{mid}").json()
        shapes.check(msg, shapes.definition("Message"))
        assert msg["From"] == {"Name": "Alice Example", "Address": "alice@sender.test"}
        assert msg["ReturnPath"] == "bounce@sender.test"  # the envelope sender
        assert msg["Bcc"] == [{"Name": "", "Address": "dave@hidden.test"}]  # envelope rcpt in no To/Cc header
        assert msg["MessageID"] == "q-report-1@sender.test"
        assert msg["Text"].strip() == "Plain body of the report."
        assert "HTML body" in msg["HTML"]
        assert [a["FileName"] for a in msg["Attachments"]] == ["figures.csv"]
        assert [a["ContentID"] for a in msg["Inline"]] == ["logo@sender.test"]
        assert msg["ListUnsubscribe"]["Links"] == ["mailto:unsub@sender.test", "https://sender.test/unsub"]
        # reading the message marked it read (Mailpit's behaviour), and "latest" is the same message
        assert c.get("/api/v1/messages").json()["unread"] == 0
        assert c.get("/api/v1/message/latest").json()["ID"] == mid

        headers = c.get(f"/api/v1/message/{mid}/headers").json()
        shapes.check(headers, shapes.response("/api/v1/message/{ID}/headers", "get"))
        assert headers["Subject"] == ["Quarterly report"] and list(headers) == sorted(headers)

        raw = c.get(f"/api/v1/message/{mid}/raw")
        assert raw.headers["content-type"].startswith("text/plain")
        assert b"Subject: Quarterly report" in raw.content and b"X-Courrier-Envelope" not in raw.content

        att = msg["Attachments"][0]
        part = c.get(f"/api/v1/message/{mid}/part/{att['PartID']}")
        assert part.content == b"a,b\n1,2\n" and part.headers["content-type"].startswith("text/csv")
        assert "figures.csv" in part.headers["content-disposition"]
        img = c.get(f"/api/v1/message/{mid}/part/{msg['Inline'][0]['PartID']}")
        assert img.content == PNG and img.headers["content-type"] == "image/png"
        import hashlib
        assert att["Checksums"]["SHA256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()

        html = c.get(f"/view/{mid}.html")
        assert "HTML body" in html.text and f"/api/v1/message/{mid}/part/" in html.text  # cid: rewritten
        assert "script-src 'none'" in html.headers["content-security-policy"]
        assert c.get("/view/latest.txt").text.strip() == "Plain body of the report."

        # search
        found = c.get("/api/v1/search", params={"query": "subject:quarterly"}).json()
        shapes.check(found, shapes.response("/api/v1/search", "get"))
        assert [m["ID"] for m in found["messages"]] == [mid] and found["messages_count"] == 1
        assert c.get("/api/v1/search", params={"query": "subject:nothing-like-this"}).json()["messages"] == []

        # read status: PUT with IDs, then with a search
        assert c.put("/api/v1/messages", json={"IDs": [mid], "Read": False}).text == "ok"
        assert c.get("/api/v1/messages").json()["unread"] == 1
        assert c.put("/api/v1/messages", json={"Read": True, "Search": "from:alice"}).text == "ok"
        assert c.get("/api/v1/messages").json()["unread"] == 0

        # tags
        assert sorted(c.get("/api/v1/tags").json()) == ["q3", "reports"]
        assert c.put("/api/v1/tags", json={"IDs": [mid], "Tags": ["urgent", "finance"]}).text == "ok"
        assert c.get("/api/v1/tags").json() == ["finance", "urgent"]
        assert c.put("/api/v1/tags/urgent", json={"Name": "later"}).text == "ok"
        assert c.delete("/api/v1/tags/finance").text == "ok"
        assert c.get(f"/api/v1/message/{mid}").json()["Tags"] == ["later"]
        assert [m["ID"] for m in c.get("/api/v1/search", params={"query": "tag:later"}).json()["messages"]] == [mid]

        # courrier's own envelope view
        env = c.get(f"/api/courrier/message/{mid}/envelope").json()
        assert env["MailFrom"] == "bounce@sender.test"
        assert env["RcptTo"] == ["bob@example.test", "carol@example.test", "dave@hidden.test"]
        assert env["FromMismatch"] is True and env["DomainMismatch"] is False


def test_send_then_delete_by_search_and_all(capture, shapes):
    with client(capture) as c:
        body = {
            "From": {"Email": "app@sender.test", "Name": "App"},
            "To": [{"Email": "user@example.test", "Name": "Ünïcode User"}],
            "Bcc": ["audit@example.test"],
            "Subject": "Sent over HTTP — ✓",
            "Text": "text part", "HTML": "<b>html part</b>",
            "Tags": ["api"], "Headers": {"X-Campaign": "c42"},
            "Attachments": [{"Filename": "hello.txt", "Content": base64.b64encode(b"hello").decode()}],
        }
        r = c.post("/api/v1/send", json=body)
        assert r.status_code == 200, r.text
        shapes.check(r.json(), shapes.response("/api/v1/send", "post"))
        sent_id = r.json()["ID"]
        msg = c.get(f"/api/v1/message/{sent_id}").json()
        assert msg["Subject"] == "Sent over HTTP — ✓" and msg["To"][0]["Name"] == "Ünïcode User"
        assert msg["Bcc"] == [{"Name": "", "Address": "audit@example.test"}]
        assert msg["Tags"] == ["api"] and msg["Attachments"][0]["FileName"] == "hello.txt"
        assert c.get(f"/api/v1/message/{sent_id}/headers").json()["X-Campaign"] == ["c42"]

        bad = c.post("/api/v1/send", json={"To": [{"Email": "x@y.test"}]})
        assert bad.status_code == 400 and "From" in bad.json()["Error"]  # JSONErrorResponse for this endpoint

        smtp_send(capture, b"From: keep@sender.test\r\nTo: bob@example.test\r\nSubject: keep me\r\n\r\nx\r\n")
        smtp_send(capture, b"From: drop@sender.test\r\nTo: bob@example.test\r\nSubject: drop me\r\n\r\nx\r\n")
        wait_total(c, 3)
        assert c.delete("/api/v1/search", params={"query": "subject:drop"}).text == "ok"
        subjects = {m["Subject"] for m in c.get("/api/v1/messages").json()["messages"]}
        assert subjects == {"keep me", "Sent over HTTP — ✓"}
        assert c.request("DELETE", "/api/v1/messages", json={"IDs": [sent_id]}).text == "ok"
        assert c.get("/api/v1/messages").json()["total"] == 1
        assert c.delete("/api/v1/messages").text == "ok"
        assert c.get("/api/v1/messages").json()["total"] == 0


def test_errors_are_plain_text_4xx_and_courrier_errors_json(capture):
    with client(capture) as c:
        for path in ("/api/v1/message/NoSuchMessage", "/api/v1/message/latest/raw", "/view/latest.html",
                     "/api/v1/message/NoSuchMessage/part/1", "/api/v1/message/NoSuchMessage/headers"):
            r = c.get(path)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain"), path
        r = c.get("/api/v1/search")
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain")
        r = c.get("/api/v1/messages", params={"limit": "many"})  # the default, as Mailpit's getStartLimit
        assert r.status_code == 200 and r.json()["start"] == 0
        r = c.put("/api/v1/messages", content=b"{not json")
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain")
        r = c.post("/api/v1/message/latest/release", json={"To": []})
        assert r.status_code == 400
        r = c.get("/api/courrier/message/NoSuchMessage/envelope")
        assert r.status_code == 404 and r.json() == {"Error": "message not found"}
        r = c.put("/api/courrier/pause", json={"Paused": "yes"})
        assert r.status_code == 400 and "Paused" in r.json()["Error"]


def test_pause_switch_makes_smtp_answer_451(capture):
    with client(capture) as c:
        assert c.put("/api/courrier/pause", json={"Paused": True}).json() == {"Paused": True}
        with smtplib.SMTP("127.0.0.1", capture.ports["smtp"], timeout=10) as s:
            s.ehlo("client.test")
            code, text = s.mail("a@sender.test")
            assert code == 451 and text.startswith(b"4.3.2")
        assert c.put("/api/courrier/pause", json={"Paused": False}).json() == {"Paused": False}
        smtp_send(capture, b"Subject: after pause\r\n\r\nx\r\n")
        wait_total(c, 1)


def test_release_relays_to_the_smarthost(server_factory):
    sink = server_factory("sink", listeners=("smtp", "http"), capture=True, hostname="sink.example.test").start()
    srv = server_factory("main", listeners=("smtp", "http"), capture=True,
                         sections={"delivery": {"smarthost": f"127.0.0.1:{sink.ports['smtp']}"}}).start()
    smtp_send(srv, rich_message())
    with client(srv) as c, client(sink) as s:
        wait_total(c, 1)
        assert c.get("/api/v1/webui").json()["MessageRelay"]["Enabled"] is True
        r = c.post("/api/v1/message/latest/release", json={"To": ["someone@elsewhere.test"]})
        assert r.status_code == 200 and r.text == "ok", r.text
        released = wait_total(s, 1, timeout=30)["messages"][0]
        assert released["Subject"] == "Quarterly report"
        env = s.get(f"/api/courrier/message/{released['ID']}/envelope").json()
        assert env["RcptTo"] == ["someone@elsewhere.test"] and env["MailFrom"] == "bounce@sender.test"
        # the release went through the outbound queue: its delivery log says so
        log = c.get("/api/courrier/delivery-log").json()
        assert any(e["Result"] == "sent" and e["Recipients"] == "someone@elsewhere.test" for e in log), log
        assert c.get(f"/api/courrier/queue/{log[0]['QueueID']}").json()["Attempts"][0]["Result"] == "sent"
        assert isinstance(c.get("/api/courrier/queue").json(), list)
