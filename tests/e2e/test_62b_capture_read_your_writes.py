"""Scenario 62b: read-your-writes in capture mode (issue 17) — a list, a search or a fetch made by the API right after a
250 includes that message, with no sleep and no retry, while other sessions' messages share its journal round."""

from __future__ import annotations

import re
import smtplib
import threading

import httpx

THREADS, EACH = 10, 20  # 200 messages, each checked at once


def test_the_api_sees_each_message_as_soon_as_its_250_is_sent(server_factory):
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    failures: list[str] = []

    def client(n: int) -> None:
        try:
            session(n)
        except Exception as e:  # noqa: BLE001 — a failed thread fails the test
            failures.append(repr(e))

    def session(n: int) -> None:
        api = httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10)
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as smtp, api:
            smtp.ehlo("app.test")
            for i in range(EACH):
                tag = f"ryw{n}x{i}"
                smtp.mail("app@sender.test")
                smtp.rcpt("someone@example.test")
                code, text = smtp.data(f"Subject: {tag}\r\nMessage-ID: <{tag}@sender.test>\r\n\r\nbody {tag}\r\n")
                assert code == 250, text
                m = re.search(rb"queued as (\S+)", text)
                assert m, text
                id_ = m.group(1).decode()
                if i % 3 == 0:  # the newest page of the list
                    page = api.get("/api/v1/messages", params={"limit": 200}).json()
                    seen = id_ in [x["ID"] for x in page["messages"]]
                elif i % 3 == 1:  # a search on its subject (the full-text index)
                    found = api.get("/api/v1/search", params={"query": f"subject:{tag}"}).json()
                    seen = [x["ID"] for x in found["messages"]] == [id_]
                else:  # the message itself, and its text
                    r = api.get(f"/api/v1/message/{id_}")
                    seen = r.status_code == 200 and r.json()["Subject"] == tag
                if not seen:
                    failures.append(f"{tag} ({id_}) not seen at once")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert httpx.get(f"http://127.0.0.1:{srv.ports['http']}/api/v1/messages?limit=1").json()["total"] == THREADS * EACH
