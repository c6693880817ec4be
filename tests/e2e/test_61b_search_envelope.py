"""Scenario 61b: search beyond Mailpit (issue 14) — ``client:`` the SMTP client's address, ``helo:`` the name it gave
in EHLO, over the real capture server and Mailpit's search endpoint."""

from __future__ import annotations

import smtplib

import httpx

from tests.support import Server


def test_client_and_helo(server_factory):
    s: Server = server_factory(listeners=("smtp", "http"), capture=True).start()
    for helo in ("app.local", "worker-7.ci.test"):
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], local_hostname=helo, timeout=30) as smtp:
            smtp.sendmail("app@example.com", ["u@example.org"], f"Subject: from {helo}\r\n\r\nhi\r\n")
    with httpx.Client(base_url=f"http://127.0.0.1:{s.ports['http']}", timeout=30) as c:
        assert c.get("/api/courrier/wait", params={"query": "subject:worker-7", "timeout": 10}).status_code == 200

        def subjects(q: str) -> list[str]:
            r = c.get("/api/v1/search", params={"query": q})
            assert r.status_code == 200, r.text
            return sorted(m["Subject"] for m in r.json()["messages"])

        assert subjects("helo:app.local") == ["from app.local"]
        assert subjects("helo:CI.TEST") == ["from worker-7.ci.test"]  # a substring, any case
        assert subjects("client:127.0.0.1") == ["from app.local", "from worker-7.ci.test"]
        assert subjects("client:127.0.0.") == []  # the address exactly, not a prefix of it
        assert subjects("client:203.0.113.9") == []
        assert subjects("-helo:app client:127.0.0.1") == ["from worker-7.ci.test"]
        assert subjects("client:%") == []  # LIKE wildcards are literal
