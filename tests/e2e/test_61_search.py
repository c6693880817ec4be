"""Scenario 61: search finds decoded text — quoted-printable and base64 bodies, RFC 2047 subjects — with Mailpit's
syntax (from:, to:, subject:, message-id:, is:, has:, before:/after:, phrases, negation)."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import httpx
import pytest


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("search"), listeners=("smtp", "http"), capture=True).start()
    msgs = []
    qp = EmailMessage()
    qp["From"], qp["To"], qp["Subject"] = "Zoë <zoe@sender.test>", "bob@example.test", "Relevé de compte"
    qp["Message-ID"] = "<qp-1@sender.test>"
    qp.set_content("Le café coûte très cher à Montréal, déjà.\n" * 3, cte="quoted-printable")
    msgs.append(qp)
    b64 = EmailMessage()
    b64["From"], b64["To"], b64["Subject"] = "ops@sender.test", "carol@example.test", "Отчёт за неделю"
    b64.set_content("Überweisung für die Straße erhalten — ünïcödé", cte="base64")
    b64.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="invoice.pdf")
    msgs.append(b64)
    plain = EmailMessage()
    plain["From"], plain["To"], plain["Subject"] = "alice@other.test", "bob@example.test", "weekly status report"
    plain.set_content("nothing special here")
    msgs.append(plain)
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        for m in msgs:
            raw = m.as_bytes()
            assert b"caf\xc3\xa9" not in raw and "Отчёт".encode() not in raw  # really encoded on the wire
            c.sendmail(m["From"].addresses[0].addr_spec, [m["To"]], raw)
    with httpx.Client(base_url=f"http://127.0.0.1:{s.ports['http']}") as h:
        deadline = time.monotonic() + 10
        while h.get("/api/v1/messages").json()["total"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield s
    s.stop()


def subjects(srv, query: str) -> set[str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}") as h:
        r = h.get("/api/v1/search", params={"query": query})
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["messages_count"] == len(data["messages"])
        return {m["Subject"] for m in data["messages"]}


def test_quoted_printable_body_is_searched_decoded(srv):
    assert subjects(srv, "café") == {"Relevé de compte"}
    assert subjects(srv, '"très cher à Montréal"') == {"Relevé de compte"}
    assert subjects(srv, "=C3=A9") == set()  # the raw QP form is not what is indexed


def test_base64_body_and_encoded_subject(srv):
    assert subjects(srv, "Straße") == {"Отчёт за неделю"}
    assert subjects(srv, "subject:неделю") == {"Отчёт за неделю"}
    assert subjects(srv, "Relevé") == {"Relevé de compte"}


def test_mailpit_filters(srv):
    assert subjects(srv, "from:zoe") == {"Relevé de compte"}
    assert subjects(srv, "to:bob@example.test") == {"Relevé de compte", "weekly status report"}
    assert subjects(srv, "to:bob@example.test -from:alice") == {"Relevé de compte"}
    assert subjects(srv, "has:attachment") == {"Отчёт за неделю"}
    assert subjects(srv, "message-id:qp-1@sender.test") == {"Relevé de compte"}
    assert subjects(srv, 'subject:"status report"') == {"weekly status report"}
    assert subjects(srv, "is:unread") == {"Relevé de compte", "Отчёт за неделю", "weekly status report"}
    assert subjects(srv, "is:read") == set()
    assert subjects(srv, "after:2000-01-01") == {"Relevé de compte", "Отчёт за неделю", "weekly status report"}
    assert subjects(srv, "before:2000-01-01") == set()
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}") as h:
        r = h.get("/api/v1/search", params={"query": "before:2000-01-01", "tz": "Pacific/Auckland"})
        assert r.status_code == 200 and r.json()["messages"] == []
        r = h.get("/api/v1/search", params={"query": "after:2000-01-01", "tz": "Not/AZone"})
        assert r.status_code == 400 and "time zone" in r.text
