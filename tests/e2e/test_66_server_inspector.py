"""Scenario 66: the inspector in server mode — an admin reads the accounts' Maildirs through the Mailpit API,
consistently with IMAP (imaplib): "read" is \\Seen, delete is an expunge, an IMAP APPEND shows up in the API; live
`new` events for the chosen mailbox; non-admins are refused; send is refused, release relays."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import json
import smtplib
import time
from email.message import EmailMessage

import httpx
import pytest
import websockets

from tests.web.shapes import Shapes

ADMIN = ("admin@example.test", "adminpw")
BOB = "bob@example.test"
BOB_INBOX = {"mailbox": f"{BOB}/INBOX"}


@pytest.fixture
def srv(server_factory):
    s = server_factory(listeners=("smtp", "imap", "http"))
    s.add_user(ADMIN[0], ADMIN[1], "--admin")
    s.add_user(BOB, "bobpw")
    s.add_user("carol@example.test", "carolpw")
    return s.start()


def api(srv, auth=ADMIN) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", auth=auth, timeout=10)


def deliver(srv, subject: str, body: str = "hello", to: str = BOB, attach: bool = False,
            sender: str = "alice@sender.test") -> None:
    m = EmailMessage()
    m["From"] = f"Alice <{sender}>"
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = f"<{subject.replace(' ', '-')}@sender.test>"
    m.set_content(body)
    if attach:
        m.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="figures.csv")
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        assert c.sendmail("bounces@sender.test", [to], m.as_bytes()) == {}


def wait_list(c: httpx.Client, n: int, params: dict, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = c.get("/api/v1/messages", params=params)
        assert r.status_code == 200, r.text
        data = r.json()
        if data["messages_count"] == n or time.monotonic() > deadline:
            assert data["messages_count"] == n, data
            return data
        time.sleep(0.05)


def imap_login(srv, user: str = BOB, password: str = "bobpw") -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    m.login(user, password)
    return m


def imap_flags(m: imaplib.IMAP4, mailbox: str = "INBOX") -> dict[str, str]:
    """Subject → FLAGS of every message of the mailbox, as the IMAP server reports them now."""
    m.select(mailbox)
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    out = {}
    for item in data:
        if isinstance(item, tuple):
            subject = item[1].decode().split(":", 1)[1].strip()
            out[subject] = item[0].decode().split("FLAGS (", 1)[1].split(")", 1)[0]
    m.close()
    return out


def test_admin_reads_bobs_mailbox_consistently_with_imap(srv):
    shapes = Shapes()
    deliver(srv, "first report", "quarterly numbers inside")
    deliver(srv, "second note", attach=True)
    deliver(srv, "third thing", sender="mallory@evil.test")
    with api(srv) as c:
        data = wait_list(c, 3, BOB_INBOX)
        shapes.check(data, shapes.response("/api/v1/messages", "get"))
        assert [m["Subject"] for m in data["messages"]] == ["third thing", "second note", "first report"]
        assert data["total"] == 3 and data["unread"] == 3
        first = data["messages"][2]
        assert first["From"] == {"Name": "Alice", "Address": "alice@sender.test"}
        assert first["Read"] is False and first["Snippet"] == "quarterly numbers inside"
        assert data["messages"][1]["Attachments"] == 1
        ids = {m["Subject"]: m["ID"] for m in data["messages"]}

        # the admin's own INBOX is the default (Mailpit clients send no mailbox)
        assert c.get("/api/v1/messages").json()["total"] == 0
        assert c.get("/api/v1/messages", params={"mailbox": "nobody@example.test/INBOX"}).status_code == 404
        assert c.get("/api/v1/messages", params={"mailbox": f"{BOB}/No-Such"}).status_code == 404
        r = c.get("/api/v1/messages", params={"mailbox": f"{BOB}/../carol"})
        assert r.status_code == 400 and "mailbox" in r.text

        # one message: its own ID says where it lives; shapes as Mailpit's
        r = c.get(f"/api/v1/message/{ids['second note']}")
        assert r.status_code == 200
        msg = r.json()
        shapes.check(msg, shapes.definition("Message"))
        assert msg["ReturnPath"] == "bounces@sender.test"
        assert [a["FileName"] for a in msg["Attachments"]] == ["figures.csv"]
        part = c.get(f"/api/v1/message/{ids['second note']}/part/{msg['Attachments'][0]['PartID']}")
        assert part.content == b"a,b\n1,2\n"
        raw = c.get(f"/api/v1/message/{ids['first report']}/raw").text
        assert "Delivered-To: bob@example.test" in raw and "Subject: first report" in raw
        hdrs = c.get(f"/api/v1/message/{ids['first report']}/headers").json()
        assert hdrs["Subject"] == ["first report"] and hdrs["Return-Path"] == ["<bounces@sender.test>"]
        assert c.get(f"/view/{ids['first report']}.txt").text.strip() == "quarterly numbers inside"
        env = c.get(f"/api/courrier/message/{ids['third thing']}/envelope").json()
        assert env["MailFrom"] == "bounces@sender.test" and env["RcptTo"] == [BOB] and env["FromMismatch"] is True
        assert env["Client"] == "127.0.0.1"
        latest = c.get("/api/v1/message/latest", params=BOB_INBOX).json()
        assert latest["ID"] == ids["third thing"]
        assert c.get("/api/v1/message/1-1-bm9ib2R5").status_code == 404

        # search (documented subset of Mailpit's syntax)
        def found(q: str) -> list[str]:
            r = c.get("/api/v1/search", params={"query": q, **BOB_INBOX})
            assert r.status_code == 200, r.text
            return sorted(m["Subject"] for m in r.json()["messages"])

        assert found("subject:report") == ["first report"]
        assert found("quarterly") == ["first report"]  # body text
        assert found("from:mallory") == ["third thing"]
        assert found("has:attachment") == ["second note"]
        assert found('-from:mallory "note"') == ["second note"]

        # GET of a message marked it read, as in Mailpit (second note, and third thing through "latest");
        # PUT read/unread too: all of it is the \\Seen flag that IMAP sees
        assert c.put("/api/v1/messages", json={"IDs": [ids["first report"]], "Read": True}).text == "ok"
        assert c.put("/api/v1/messages", json={"IDs": [ids["third thing"]], "Read": False}).text == "ok"
        imap = imap_login(srv)
        try:
            flags = imap_flags(imap)
            assert "\\Seen" in flags["first report"] and "\\Seen" in flags["second note"]
            assert "\\Seen" not in flags["third thing"]
            # and the other way: \Seen removed over IMAP is "unread" in the API
            imap.select("INBOX")
            typ, data = imap.search(None, "SUBJECT", '"second note"')
            imap.store(data[0].decode(), "-FLAGS", "\\Seen")
            imap.close()
            summary = {m["Subject"]: m["Read"] for m in c.get("/api/v1/messages", params=BOB_INBOX).json()["messages"]}
            assert summary == {"first report": True, "second note": False, "third thing": False}
            assert found("is:unread") == ["second note", "third thing"]

            # delete through the API = expunge: IMAP no longer lists it
            assert c.request("DELETE", "/api/v1/messages", json={"IDs": [ids["third thing"]]}).text == "ok"
            assert set(imap_flags(imap)) == {"first report", "second note"}
            assert c.get(f"/api/v1/message/{ids['third thing']}").status_code == 404

            # a message APPENDed over IMAP appears in the API, with its flags
            appended = (b"From: bob@example.test\r\nTo: bob@example.test\r\nSubject: appended by imap\r\n\r\n"
                        b"kept as a draft\r\n")
            typ, _ = imap.append("INBOX", "(\\Draft $Work)", None, appended)
            assert typ == "OK"
            data = wait_list(c, 3, BOB_INBOX)
            top = data["messages"][0]
            assert top["Subject"] == "appended by imap" and top["Tags"] == ["$Work"]
            env = c.get(f"/api/courrier/message/{top['ID']}/envelope").json()
            assert env["FromMismatch"] is False  # no envelope recorded: nothing to compare

            # folders (Sent, Junk, Archive… made with the account, Projects created by the client) are mailboxes too
            assert imap.create("Projects")[0] == "OK"
            imap.append("Archive", "(\\Seen)", None, b"From: bob@example.test\r\nSubject: kept\r\n\r\nx\r\n")
            archived = wait_list(c, 1, {"mailbox": f"{BOB}/Archive"})
            assert archived["messages"][0]["Read"] is True
            assert wait_list(c, 0, {"mailbox": f"{BOB}/Sent"})["total"] == 0
            boxes = c.get("/api/courrier/mailboxes").json()
            assert boxes["Mode"] == "server" and boxes["Default"] == "admin@example.test/INBOX"
            bob = next(a for a in boxes["Accounts"] if a["Address"] == BOB)
            assert bob["Folders"][0] == "INBOX" and {"Archive", "Sent", "Junk", "Projects"} <= set(bob["Folders"])
        finally:
            imap.logout()

        # message IDs survive a restart
        srv.stop()
        srv.start()
        again = wait_list(c, 3, BOB_INBOX)
        assert ids["first report"] in {m["ID"] for m in again["messages"]}


def test_refusals_release_info_and_pause(srv):
    deliver(srv, "private")
    with api(srv, auth=(BOB, "bobpw")) as bob:
        assert bob.get("/api/v1/messages", params=BOB_INBOX).status_code == 401
        assert bob.get("/api/courrier/mailboxes").status_code == 401
    with api(srv, auth=None) as anon:
        assert anon.get("/api/v1/messages", params=BOB_INBOX).status_code == 401
    with api(srv) as c:
        r = c.post("/api/v1/send", json={"From": {"Email": "admin@example.test"}, "To": [{"Email": BOB}],
                                         "Subject": "x"})
        assert r.status_code == 400 and "server mode" in r.json()["Error"]
        # release goes through the outbound path: here to a local account
        mid = wait_list(c, 1, BOB_INBOX)["messages"][0]["ID"]
        r = c.post(f"/api/v1/message/{mid}/release", json={"To": ["carol@example.test"]})
        assert r.status_code == 200, r.text
        carol = wait_list(c, 1, {"mailbox": "carol@example.test"})
        assert carol["messages"][0]["Subject"] == "private"
        # /api/v1/info counts the chosen mailbox
        info = c.get("/api/v1/info", params=BOB_INBOX).json()
        Shapes().check(info, Shapes().definition("AppInformation"))
        assert (info["Messages"], info["Unread"]) == (1, 1)
        # the "pause incoming" switch holds the MX role in server mode too
        assert c.put("/api/courrier/pause", json={"Paused": True}).json() == {"Paused": True}
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo("client.test")
            assert s.mail("x@sender.test")[0] == 451
        assert c.put("/api/courrier/pause", json={"Paused": False}).json() == {"Paused": False}
        deliver(srv, "after the pause")
        wait_list(c, 2, BOB_INBOX)


async def test_new_events_for_the_chosen_mailbox(srv):
    auth = "Basic " + base64.b64encode(b"admin@example.test:adminpw").decode()
    url = f"ws://127.0.0.1:{srv.ports['http']}/api/events?mailbox={BOB}/INBOX"
    async with websockets.connect(url, additional_headers={"Authorization": auth}) as ws:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, deliver, srv, "to carol", "x", "carol@example.test")
        await loop.run_in_executor(None, deliver, srv, "live one")
        async with asyncio.timeout(10):
            frame = json.loads(await ws.recv())
            assert frame["Type"] == "new" and frame["Data"]["Subject"] == "live one"  # carol's mail not sent here
            frame = json.loads(await ws.recv())
            assert frame["Type"] == "stats" and frame["Data"]["Total"] == 1
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.ports['http']}", auth=ADMIN) as c:
                mid = frame_id = (await c.get("/api/v1/messages", params=BOB_INBOX)).json()["messages"][0]["ID"]
                await c.put("/api/v1/messages", json={"IDs": [mid], "Read": True})
                frame = json.loads(await ws.recv())
                assert frame == {"Type": "update", "Data": {"ID": frame_id, "Read": True}}
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(url, additional_headers={
                "Authorization": "Basic " + base64.b64encode(b"bob@example.test:bobpw").decode()}):
            pass
