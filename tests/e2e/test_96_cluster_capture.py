"""Scenario 96: capture mode on a cluster — two `courrier serve --capture` nodes on one private PostgreSQL
(tests/pgcluster.py, `[store] backend = "postgresql"`).

A message sent with smtplib to node 1 is listed by node 2's Mailpit API as soon as the 250 came back, and node 2's
WebSocket /api/events sends its `new` frame within 3 s (LISTEN/NOTIFY); list, search, message, raw, headers and tags
read the same on both nodes; a tag or read change made on one node reaches the other's WebSocket; `max_messages`
holds across the nodes while both capture at once."""

from __future__ import annotations

import asyncio
import json
import smtplib
import time
from email.message import EmailMessage

import httpx
import websockets

from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)


def make_node(server_factory, dsn: str, name: str, max_messages: int = 500):
    return server_factory(name, listeners=("smtp", "http"), hostname=f"{name}.example.test", serve_args=("--capture",),
                          sections={"store": {"backend": "postgresql", "dsn": dsn, "node": name, "timeout": "5s"},
                                    "capture": {"max_messages": max_messages}})


def message(subject: str, attach: bool = False) -> bytes:
    m = EmailMessage()
    m["From"] = "Zoë Sender <zoe@sender.test>"
    m["To"] = "Bob <bob@example.test>"
    m["Subject"] = subject
    m["X-Mailer"] = "PHPMailer 6.9"
    m.set_content(f"The quarterly relevé for {subject}.\n")
    if attach:
        m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="report.pdf")
    return m.as_bytes()


def send(node, subject: str, rcpt: str = "bob+news@example.test", attach: bool = False) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=20) as c:
        c.sendmail("zoe@sender.test", [rcpt], message(subject, attach))


async def next_of(ws, type_: str, timeout: float, key: str = "") -> dict:
    """The next frame of ``type_`` (whose Data has ``key``, when given)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["Type"] == type_ and (not key or key in (frame["Data"] or {})):
                return frame


def api(node) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{node.ports['http']}", timeout=20)


async def test_two_capture_nodes_on_one_database(server_factory, pg_cluster):  # noqa: F811
    dsn = pg_cluster.new_database()
    n1 = make_node(server_factory, dsn, "n1").start()
    n2 = make_node(server_factory, dsn, "n2").start()
    loop = asyncio.get_running_loop()
    async with websockets.connect(f"ws://127.0.0.1:{n2.ports['http']}/api/events") as ws:
        await next_of(ws, "stats", 5)  # sent on connect: the socket is subscribed from here on
        t0 = time.monotonic()
        await loop.run_in_executor(None, send, n1, "Q3 numbers", "bob+news@example.test", True)
        with api(n1) as a1, api(n2) as a2:
            listed = a2.get("/api/v1/messages").json()  # at once: the 250 came after the commit
            assert listed["total"] == 1 and listed["messages"][0]["Subject"] == "Q3 numbers"
            mid = listed["messages"][0]["ID"]
            new = await next_of(ws, "new", 3 - (time.monotonic() - t0))
            assert new["Data"]["ID"] == mid and new["Data"]["Tags"] == ["news"]
            assert time.monotonic() - t0 < 3

            await loop.run_in_executor(None, send, n2, "Weekly digest", "carol@example.test")
            await loop.run_in_executor(None, send, n1, "Password reset", "dave@example.test")
            for path in ("/api/v1/messages", f"/api/v1/message/{mid}", f"/api/v1/message/{mid}/raw",
                         f"/api/v1/message/{mid}/headers", "/api/v1/tags"):
                r1, r2 = a1.get(path), a2.get(path)
                assert r1.status_code == r2.status_code == 200, path
                assert r1.content == r2.content, path
            raw = a2.get(f"/api/v1/message/{mid}/raw").content
            assert b"\r\nSubject: Q3 numbers\r\n" in raw and raw.startswith(b"Message-ID: <" + mid.encode())
            for q in ("relevé", "RELEVE", "from:zoë", "subject:digest", "to:bob", "tag:NEWS", "has:attachment",
                      "header:X-Mailer:phpmailer", "is:unread", "larger:10", "smaller:10", "-subject:q3", "after:2000-01-01",
                      "message-id:n1.example.test"):
                s1 = a1.get("/api/v1/search", params={"query": q}).json()
                s2 = a2.get("/api/v1/search", params={"query": q}).json()
                assert s1 == s2, q
                assert s1["messages_count"] == {"subject:digest": 1, "tag:NEWS": 1, "has:attachment": 1,
                                                "smaller:10": 0, "-subject:q3": 2, "message-id:n1.example.test": 0,
                                                "is:unread": 2,  # GET /message/{ID} marked it read (Mailpit)
                                                }.get(q, 3), q

            # changes on node 1 reach node 2's WebSocket; node 2's changes are seen by node 1
            assert a1.put("/api/v1/tags", json={"IDs": [mid], "Tags": ["urgent", "finance"]}).text == "ok"
            upd = await next_of(ws, "update", 3, "Tags")  # (the GET above marked it read: an update too)
            assert upd["Data"] == {"ID": mid, "Tags": ["urgent", "finance"]}
            assert a2.get("/api/v1/tags").json() == ["finance", "urgent"]
            assert a1.put("/api/v1/messages", json={"IDs": [mid], "Read": False}).status_code == 200
            assert (await next_of(ws, "update", 3, "Read"))["Data"] == {"ID": mid, "Read": False}
            assert [m["ID"] for m in a2.get("/api/v1/search", params={"query": "is:unread tag:finance"}).json()[
                "messages"]] == [mid]
            assert a2.put("/api/v1/tags/urgent", json={"Name": "later"}).text == "ok"
            assert a1.get(f"/api/v1/message/{mid}").json()["Tags"] == ["finance", "later"]
            assert a1.request("DELETE", "/api/v1/messages", json={"IDs": [mid]}).status_code == 200
            assert (await next_of(ws, "delete", 3))["Data"] == {"ID": mid}
            assert a2.get("/api/v1/messages").json()["total"] == 2


async def test_retention_holds_across_nodes(server_factory, pg_cluster):  # noqa: F811
    dsn = pg_cluster.new_database()
    n1 = make_node(server_factory, dsn, "r1", max_messages=5).start()
    n2 = make_node(server_factory, dsn, "r2", max_messages=5).start()
    loop = asyncio.get_running_loop()

    def flood(node, prefix):
        for i in range(6):
            send(node, f"{prefix}{i}", "eve@example.test")

    await asyncio.gather(loop.run_in_executor(None, flood, n1, "a"), loop.run_in_executor(None, flood, n2, "b"))
    with api(n1) as a1, api(n2) as a2:
        l1, l2 = a1.get("/api/v1/messages").json(), a2.get("/api/v1/messages").json()
        assert l1["total"] == l2["total"] == 5 and l1["messages"] == l2["messages"]
        assert {m["Subject"] for m in l1["messages"]} <= {f"{p}{i}" for p in "ab" for i in range(6)}
        assert {m["Subject"] for m in l1["messages"]} & {"a5", "b5"} == {"a5", "b5"}  # the newest are kept
