"""Scenario 82: the small differences to Mailpit that issue 13 lists, each checked over the real server against the
Mailpit source file that defines the behaviour (named in each test's docstring)."""

from __future__ import annotations

import asyncio
import base64
import json
import smtplib
import time

import httpx
import pytest
import websockets

from tests.e2e.capture_support import send

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def plain(subject: str, extra: str = "", body: str = "hello") -> bytes:
    return (f"From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n{extra}\r\n"
            f"{body}\r\n").encode()


def client(srv) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10)


def wait_total(c: httpx.Client, n: int, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while (page := c.get("/api/v1/messages").json())["total"] < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert page["total"] == n, page
    return page


@pytest.fixture(scope="module")
def mp(tmp_path_factory):
    """One capture server with three messages (oldest first: one, two, three), shared by the read-only tests."""
    from tests.support import Server

    d = tmp_path_factory.mktemp("mp")
    srv = Server(d, listeners=("smtp", "http"), capture=True).start()
    ids = []
    for n, extra in (("one", "Reply-To: replies@reply.test\r\nMessage-ID: <abc-123@sender.test>\r\n"),
                     ("two", "List-Unsubscribe: <https://a.test/u>, <https://b.test/u>, <ftp://c.test>\r\n"),
                     ("three", "")):
        ids.append(send(srv.ports["smtp"], ["bob@example.test"], plain(f"subject {n}", extra, f"body of {n}")))
        time.sleep(0.02)  # distinct Created times, milliseconds apart
    with client(srv) as c:
        wait_total(c, 3)
    yield srv, ids
    srv.stop()


def test_latest_with_query_is_the_newest_match(mp):
    """server/apiv1/message.go → internal/storage/messages.go ``LatestID``: ``?query=`` picks the newest match."""
    srv, (one, two, three) = mp
    with client(srv) as c:
        assert c.get("/api/v1/message/latest").json()["ID"] == three
        assert c.get("/api/v1/message/latest", params={"query": "subject:two"}).json()["ID"] == two
        assert c.get("/api/v1/message/latest/raw", params={"query": "subject:one"}).text.count("subject one") == 1
        assert c.get("/api/v1/message/latest", params={"query": "subject:nothing-like-it"}).status_code == 404


def test_set_read_with_ids_and_search_is_400(mp):
    """server/apiv1/messages.go ``SetReadStatus``: either IDs or a search, not both."""
    srv, (one, *_) = mp
    with client(srv) as c:
        r = c.put("/api/v1/messages", json={"IDs": [one], "Search": "subject:one", "Read": True})
        assert r.status_code == 400 and "not both" in r.text


def test_bad_limit_and_start_fall_back_to_defaults(mp):
    """server/apiv1/api.go ``getStartLimit``: an unparsable or negative value is the default (start 0, limit 50)."""
    srv, _ = mp
    with client(srv) as c:
        for q in ("limit=abc&start=xyz", "limit=-5&start=-1", "limit=&start=", "limit=1.5&start=1e3"):
            r = c.get(f"/api/v1/messages?{q}")
            assert r.status_code == 200, (q, r.text)
            assert r.json()["start"] == 0 and len(r.json()["messages"]) == 3, q
            r = c.get(f"/api/v1/search?query=subject&{q}")
            assert r.status_code == 200 and len(r.json()["messages"]) == 3, q


def test_before_pages_strictly_older(mp):
    """server/apiv1/api.go ``getStartLimit`` + internal/storage/search.go: ``?before=`` keeps ``Created < before``."""
    srv, (one, two, three) = mp
    with client(srv) as c:
        created = {m["ID"]: m["Created"] for m in c.get("/api/v1/messages").json()["messages"]}
        page = c.get("/api/v1/messages", params={"before": created[three], "limit": 1}).json()
        assert [m["ID"] for m in page["messages"]] == [two] and page["count"] == 1
        page = c.get("/api/v1/messages", params={"before": created[two]}).json()
        assert [m["ID"] for m in page["messages"]] == [one]
        found = c.get("/api/v1/search", params={"query": "subject", "before": created[three]}).json()
        assert [m["ID"] for m in found["messages"]] == [two, one] and found["messages_count"] == 2
        assert len(c.get("/api/v1/messages", params={"before": "not a date"}).json()["messages"]) == 3


def test_raw_download_and_part_disposition(server_factory):
    """server/apiv1/message.go ``DownloadRaw`` (``dl=1``: attachment "ID.eml") and ``DownloadAttachment``
    (``inline; filename="…"``, the name falling back to the Content-ID; HTML/SVG sent as attachments)."""
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    msg = (b"From: a@sender.test\r\nTo: bob@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/related; boundary=B\r\n\r\n--B\r\nContent-Type: text/html\r\n\r\n"
           b"<img src=\"cid:logo@x\">\r\n--B\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PNG) + b"\r\n--B\r\n"
           b"Content-Type: image/svg+xml\r\nContent-Disposition: attachment; filename=\"pic.svg\"\r\n\r\n"
           b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>\r\n--B--\r\n")
    mid = send(srv.ports["smtp"], ["bob@example.test"], msg)
    with client(srv) as c:
        wait_total(c, 1)
        r = c.get(f"/api/v1/message/{mid}/raw", params={"dl": "1"})
        assert r.headers["content-disposition"] == f'attachment; filename="{mid}.eml"'
        assert "content-disposition" not in c.get(f"/api/v1/message/{mid}/raw").headers
        m = c.get(f"/api/v1/message/{mid}").json()
        [inline] = m["Inline"]
        assert inline["FileName"] == "logo@x" and inline["ContentID"] == "logo@x"  # storage AttachmentSummary
        r = c.get(f"/api/v1/message/{mid}/part/{inline['PartID']}")
        assert r.headers["content-disposition"] == 'inline; filename="logo@x"' and r.content == PNG
        [svg] = m["Attachments"]
        r = c.get(f"/api/v1/message/{mid}/part/{svg['PartID']}")
        assert r.headers["content-disposition"] == 'attachment; filename="pic.svg"'
        assert r.headers["content-type"] == "application/octet-stream"


def test_missing_message_id_is_added_at_arrival(mp):
    """server/smtpd/smtpd.go ``SaveToDatabase``: no Message-ID → ``Message-ID: <…@mailpit>`` in front."""
    srv, (one, two, three) = mp
    with client(srv) as c:
        m = c.get(f"/api/v1/message/{two}").json()
        assert m["MessageID"].endswith("@mailpit")
        assert c.get(f"/api/v1/message/{two}/raw").text.startswith(f"Message-ID: <{m['MessageID']}>\r\n")
        assert c.get(f"/api/v1/message/{one}").json()["MessageID"] == "abc-123@sender.test"  # kept as sent
        hits = c.get("/api/v1/search", params={"query": f"message-id:{m['MessageID']}"}).json()
        assert [x["ID"] for x in hits["messages"]] == [two]


def test_list_unsubscribe_errors_are_reported(mp):
    """internal/tools/listunsubscribe.go ``ListUnsubscribeParser``: at most one mailto: and one HTTP link."""
    srv, (one, two, three) = mp
    with client(srv) as c:
        lu = c.get(f"/api/v1/message/{two}").json()["ListUnsubscribe"]
        assert lu["Links"] == [] and "should include a maximum of one email and one HTTP link" in lu["Errors"]
        assert c.get(f"/api/v1/message/{one}").json()["ListUnsubscribe"]["Errors"] == ""


def test_send_api_rules(server_factory):
    """server/apiv1/send.go: Headers may not override To/From/Subject…; Content may be a data URI; a ContentID
    attachment is an inline part of a multipart/related."""
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    base = {"From": {"Email": "app@sender.test"}, "To": [{"Email": "bob@example.test"}], "Subject": "sent",
            "Text": "text body", "HTML": '<p>html <img src="cid:logo"></p>'}
    with client(srv) as c:
        for name in ("Subject", "from", "To", "Date", "Content-Type", "MIME-Version", "Bcc"):
            r = c.post("/api/v1/send", json={**base, "Headers": {name: "x"}})
            assert r.status_code == 400 and r.json()["Error"] == f'cannot overwrite header: "{name}"', r.text
        r = c.post("/api/v1/send", json={**base, "Headers": {"X-Custom": "yes"}, "Attachments": [
            {"Filename": "notes.txt", "Content": "data:text/plain;base64," + base64.b64encode(b"notes").decode()},
            {"Filename": "logo.png", "Content": base64.b64encode(PNG).decode(), "ContentID": "logo",
             "ContentType": "image/png"}]})
        assert r.status_code == 200, r.text
        mid = r.json()["ID"]
        m = c.get(f"/api/v1/message/{mid}").json()
        assert m["Subject"] == "sent" and [a["FileName"] for a in m["Attachments"]] == ["notes.txt"]
        assert [(a["FileName"], a["ContentID"]) for a in m["Inline"]] == [("logo.png", "logo")]
        assert c.get(f"/api/v1/message/{mid}/part/{m['Attachments'][0]['PartID']}").content == b"notes"
        raw = c.get(f"/api/v1/message/{mid}/raw").text
        assert "multipart/related" in raw and "X-Custom: yes" in raw
        assert raw.index("multipart/related") < raw.index("image/png")


def test_release_accepts_name_and_address(server_factory):
    """server/apiv1/release.go: To entries are parsed as addresses, so ``"Doe, Jane" <jane@…>`` is one."""
    sink = server_factory("sink", listeners=("smtp", "http"), capture=True, hostname="sink.example.test").start()
    main = server_factory("main", listeners=("smtp", "http"), capture=True,
                          sections={"delivery": {"smarthost": f"127.0.0.1:{sink.ports['smtp']}"}}).start()
    mid = send(main.ports["smtp"], ["bob@example.test"], plain("to release"))
    with client(main) as c, client(sink) as s:
        wait_total(c, 1)
        r = c.post(f"/api/v1/message/{mid}/release", json={"To": ['"Doe, Jane" <jane@elsewhere.test>']})
        assert r.status_code == 200, r.text
        page = wait_total(s, 1, 30)  # through the outbound queue
        env = s.get(f"/api/courrier/message/{page['messages'][0]['ID']}/envelope").json()
        assert env["RcptTo"] == ["jane@elsewhere.test"], s.get(f"/api/v1/message/{page['messages'][0]['ID']}/raw").text[:1500]


async def next_of(ws, type_: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["Type"] == type_:
                return frame


async def test_websocket_stats_on_connect_and_updates(server_factory):
    """server/websockets (stats on connect), internal/storage/tags.go (``update`` {ID, Tags}) and
    internal/storage/messages.go ``MarkRead`` (``update`` {ID, Read})."""
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    mid = send(srv.ports["smtp"], ["bob@example.test"], plain("live"))
    base = f"127.0.0.1:{srv.ports['http']}"
    async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as c:
        for _ in range(100):
            if (await c.get("/api/v1/messages")).json()["total"] == 1:
                break
            await asyncio.sleep(0.05)
        async with websockets.connect(f"ws://{base}/api/events") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["Type"] == "stats" and first["Data"]["Total"] == 1 and first["Data"]["Unread"] == 1
            assert (await c.put("/api/v1/tags", json={"IDs": [mid], "Tags": ["alpha", "beta"]})).status_code == 200
            upd = await next_of(ws, "update")
            assert upd["Data"] == {"ID": mid, "Tags": ["alpha", "beta"]}
            assert (await c.put("/api/v1/messages", json={"IDs": [mid], "Read": True})).status_code == 200
            upd = await next_of(ws, "update")
            assert upd["Data"] == {"ID": mid, "Read": True}
            assert (await next_of(ws, "stats"))["Data"]["Unread"] == 0


def test_legacy_count_and_read_fields(mp):
    """server/apiv1/messages.go: ``count`` (messages on the page, "left for backwards compatibility"); the
    message's ``Read`` older clients read."""
    srv, (one, two, three) = mp
    with client(srv) as c:
        page = c.get("/api/v1/messages", params={"limit": 2}).json()
        assert page["count"] == 2 and page["total"] == 3
        assert c.get("/api/v1/search", params={"query": "subject:three"}).json()["count"] == 1
        assert c.get(f"/api/v1/message/{three}").json()["Read"] is True


def test_smtp_rejected_counts_refusals(server_factory):
    """server/smtpd/smtpd.go ``handlerRcpt``: a recipient outside Mailpit's allowed-recipients regex gets 550 and
    counts in ``RuntimeStats.SMTPRejected`` (internal/stats)."""
    srv = server_factory(listeners=("smtp", "http"), capture=True,
                         sections={"capture": {"allowed_recipients": r"@example\.test$"}}).start()
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
        s.ehlo("app.test")
        s.mail("a@sender.test")
        assert s.rcpt("x@elsewhere.test")[0] == 550
        assert s.rcpt("y@elsewhere.test")[0] == 550
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(plain("allowed"))[0] == 250
    with client(srv) as c:
        wait_total(c, 1)
        stats = c.get("/api/v1/info").json()["RuntimeStats"]
        assert stats["SMTPRejected"] == 2 and stats["SMTPAccepted"] == 1


def test_search_as_mailpit(mp):
    """internal/storage/search.go ``searchQueryBuilder``: dateparse forms with inclusive bounds, ``addressed:``
    over From/To/Cc/Bcc/Reply-To, ``message-id:`` substring, ``has:inlines``, free text as a substring."""
    srv, (one, two, three) = mp

    def ids(q: str) -> list[str]:
        r = c.get("/api/v1/search", params={"query": q})
        assert r.status_code == 200, (q, r.text)
        return [m["ID"] for m in r.json()["messages"]]

    with client(srv) as c:
        created = c.get(f"/api/v1/message/{two}").json()  # marks read; Created from the summary below
        created = next(m["Created"] for m in c.get("/api/v1/messages").json()["messages"] if m["ID"] == two)
        assert ids(f"before:{created}") == [two, one]  # its own Created matches: inclusive
        assert ids(f"after:{created}") == [three, two]
        assert ids("before:2000/01/01") == [] and len(ids("after:2000/01/01")) == 3
        assert len(ids('after:"1 Jan 2000"')) == 3 and ids("before:1999-12-31") == []
        assert ids("addressed:alice@sender.test") == [three, two, one]  # From
        assert ids("addressed:replies@reply.test") == [one]  # Reply-To
        assert ids("message-id:abc-12") == [one]
        assert ids("has:inlines") == [] and ids("has:inline") == []
        assert ids("ody of tw") == [two]  # inside words
        assert ids("ODY OF THREE") == [three]  # case-insensitive


def test_metrics_names(mp):
    """Issue 13's /metrics list: messages received/rejected, sessions, queue length, API latency histograms."""
    srv, (one, *_) = mp
    with client(srv) as c:
        c.get("/api/v1/messages")
        c.get(f"/api/v1/message/{one}/headers")
        text = c.get("/metrics").text
    for line in ('courrier_smtp_messages_total{listener="smtp",result="accepted"} 3.0',
                 'courrier_smtp_messages_total{listener="smtp",result="rejected"}',
                 'courrier_sessions_total{protocol="smtp"} ', "courrier_queue_messages ",
                 "# TYPE courrier_http_request_duration_seconds histogram",
                 'courrier_http_request_duration_seconds_count{method="GET",route="/api/v1/messages"}',
                 'courrier_http_request_duration_seconds_count{method="GET",route="/api/v1/message/{ID}/headers"}'):
        assert line in text, [x for x in text.splitlines() if "session" in x or "duration_seconds_count" in x]
