"""Scenario 81b: every path and method in Mailpit's own swagger document (the copy in tests/web/data, the file
Mailpit serves at /api/v1/swagger.json) is answered by courrier's capture mode for a real captured message: none
gives 404 or 405 (an endpoint missing) or a 5xx (an endpoint that fails). The shape of each answer is checked by
test_60 (field names and JSON types) and the behaviour of each by test_81/test_82; this one keeps the list whole when
Mailpit adds an endpoint and the swagger copy is refreshed."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.support import Server

SWAGGER = Path(__file__).parents[1] / "web" / "data" / "mailpit-api-v1.swagger.json"

BODIES = {  # a valid request body for each state-changing call, as Mailpit's documentation gives it
    ("put", "/api/v1/chaos"): {"Sender": {"ErrorCode": 451, "Probability": 0}},
    ("post", "/api/v1/message/{ID}/release"): {"To": ["someone@example.org"]},
    ("put", "/api/v1/messages"): {"IDs": ["{ID}"], "Read": True},
    ("delete", "/api/v1/messages"): {"IDs": ["{ID}"]},
    ("post", "/api/v1/send"): {"From": {"Email": "app@example.com"}, "To": [{"Email": "u@example.org"}],
                               "Subject": "sent", "Text": "hello"},
    ("put", "/api/v1/tags"): {"IDs": ["{ID}"], "Tags": ["one"]},
    ("put", "/api/v1/tags/{Tag}"): {"Name": "renamed"},
}


def _message() -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "app@example.com", "u@example.org", "coverage"
    m.set_content("text body http://127.0.0.1:9/x")
    m.add_alternative('<p>html <a href="http://127.0.0.1:9/x">link</a></p>', subtype="html")
    m.add_attachment(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, maintype="image", subtype="png", filename="a.png")
    return m.as_bytes()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("mp81b"), listeners=("smtp", "http"), capture=True,
               sections={"capture": {"chaos": True}})
    s.start()
    yield s
    s.stop()


def _capture(s: Server, c: httpx.Client) -> str:
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30) as smtp:
        smtp.sendmail("app@example.com", ["u@example.org"], _message())
    r = c.get("/api/courrier/wait", params={"query": "subject:coverage", "timeout": 10})
    assert r.status_code == 200
    return r.json()["ID"]


def _operations() -> list[tuple[str, str]]:
    doc = json.loads(SWAGGER.read_text())
    return [(method, path) for path, ops in doc["paths"].items() for method in ops]


def test_the_swagger_copy_is_the_document_served(srv):
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=30) as c:
        assert c.get("/api/v1/swagger.json").json() == json.loads(SWAGGER.read_text())


@pytest.mark.parametrize("method,path", _operations())
def test_every_swagger_operation_is_answered(srv, method, path):
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=30) as c:
        ident = _capture(srv, c)
        c.put("/api/v1/tags", json={"IDs": [ident], "Tags": ["cover"]})
        part = c.get(f"/api/v1/message/{ident}").json()["Attachments"][0]["PartID"]
        url = path.replace("{ID}", ident).replace("{PartID}", part).replace("{Tag}", "cover")
        body = BODIES.get((method, path))
        if body is not None:
            body = json.loads(json.dumps(body).replace("{ID}", ident))
        r = c.request(method.upper(), url, json=body)
    assert r.status_code not in (404, 405), (method, url, r.status_code, r.text[:200])
    assert r.status_code < 500, (method, url, r.status_code, r.text[:200])
