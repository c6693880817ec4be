"""The API's JSON, pinned byte for byte: list, search, message, headers, envelope, tags, info and parse errors of a
fixed set of messages, in both modes (the capture store, and the server-mode mailbox inspector).

Answers are compared as the text the server sends — key order, separators and escapes included — after the values
that change from run to run are replaced: message IDs (random in capture mode, UIDVALIDITY-based in server mode)
by ``<ID1>``, ``<ID2>``… in order of the first listing, arrival times (``Created``, ``Received``, a ``Date``
without a header to read it from) and the runtime
counters of ``/api/v1/info``. The WebSocket frames of the capture store's ``new`` events are pinned too. ``tests/data/api_golden.json`` was written from the code before the records
refactor (issue 12, step 7); set ``COURRIER_WRITE_GOLDEN=1`` to write it again after an intended change.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from courrier.accounts import Accounts
from courrier.auth import AuthGate
from courrier.capture.store import CaptureStore
from courrier.config import from_mapping
from courrier.mailbox.store import MaildirStore
from courrier.web.asgi import build
from courrier.web.context import build_context
from courrier.web.events import frame

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "api_golden.json"
ADMIN = "admin@example.test"
DATE = "Mon, 02 Mar 2026 10:00:00 +0100"


def messages() -> list[bytes]:
    """Five messages that exercise every field of Mailpit's JSON and the parse-error mark (LF, as stored)."""
    rich = EmailMessage()
    rich["From"] = "=?utf-8?q?Z=C3=A9lie?= <zelie@example.test>"
    rich["To"] = "bob@example.test"
    rich["Cc"] = "Carol <carol@example.test>"
    rich["Reply-To"] = "replies@example.test"
    rich["Subject"] = "=?utf-8?b?" + base64.b64encode("Réunion trimestrielle".encode()).decode() + "?="
    rich["Date"] = DATE
    rich["Message-ID"] = "<rich@example.test>"
    rich["List-Unsubscribe"] = "<mailto:unsub@example.test>, <https://example.test/unsub?u=1>"
    rich["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    rich.set_content("Le texte brut, café.\n", cte="quoted-printable")
    rich.add_alternative("<html><body><p>Le <b>HTML</b> &amp; co <img src=\"cid:logo@x\"></p></body></html>",
                         subtype="html", cte="base64")
    rich.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", cid="<logo@x>")
    rich.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="rapport.pdf")
    for n, part in enumerate(p for p in rich.walk() if p.is_multipart()):
        part.set_boundary(f"==boundary{n}==")  # not the random default: the headers are pinned too
    plain = (f"From: Alice <alice@sender.test>\nTo: bob@example.test, \"Dave, Jr.\" <dave@example.test>\n"
             f"Subject: hello banana\nDate: {DATE}\nMessage-ID: <plain@sender.test>\nX-Tags: blue, green\n\n"
             "A plain body with a banana.\n").encode()
    html_only = (f"From: news@sender.test\nTo: bob@example.test\nSubject: =?iso-8859-1?q?Caf=E9?=\nDate: {DATE}\n"
                 "Message-ID: <html@sender.test>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
                 "<p>Only <i>HTML</i> here.</p>\n").encode()
    broken = (f"From: x@sender.test\nTo: bob@example.test\nSubject: broken\nDate: {DATE}\n"
              "Message-ID: <broken@sender.test>\nMIME-Version: 1.0\n").encode()  # parts nested beyond the bound
    broken += b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(101))
    broken += b"Content-Type: text/plain\n\ninnermost\n" + b"".join(b"--b%d--\n" % i for i in reversed(range(101)))
    bare = b"Subject: no addresses\n\nbody\n"
    return [rich.as_bytes().replace(b"\r\n", b"\n"), plain, html_only, broken, bare]


def normalise(text: str, ids: list[str]) -> str:
    for n, i in enumerate(ids, 1):
        text = text.replace(i, f"<ID{n}>")
    # arrival times; a Date from the header is kept (a message without one shows its arrival time)
    text = re.sub(r'"(Created|Received|Date)":( ?)"(?!2026-03-02T09:00:00\.000Z")[^"]*"', r'"\1":\2"<time>"', text)
    text = re.sub(r'"(Database|DatabaseSize|Memory|Uptime)":( ?)("[^"]*"|\d+)', r'"\1":\2"<runtime>"', text)
    return text


async def record(client: httpx.AsyncClient, q: str) -> dict[str, str]:
    """Every JSON answer about the messages, normalised."""
    first = await client.get(f"/api/v1/messages{q}")
    assert first.status_code == 200
    ids = [m["ID"] for m in first.json()["messages"]]
    sep = "&" if q else "?"
    paths = ["/api/v1/messages" + q, f"/api/v1/messages{q}{sep}start=1&limit=2", f"/api/v1/search{q}{sep}query=banana",
             f"/api/v1/search{q}{sep}query=is:unread", f"/api/v1/search{q}{sep}query=tag:blue", "/api/v1/tags" + q,
             "/api/v1/info" + q, "/api/courrier/parse-errors?" + "&".join(f"id={i}" for i in ids)]
    for i in ids:
        paths += [f"/api/v1/message/{i}/headers", f"/api/courrier/message/{i}/envelope", f"/api/v1/message/{i}"]
    out: dict[str, str] = {}
    for p in paths:
        r = await client.get(p)
        assert r.status_code == 200, (p, r.text)
        assert r.headers["content-type"].startswith("application/json")
        out[normalise(p, ids)] = normalise(r.text, ids)
    out["after read: /api/v1/messages"] = normalise((await client.get("/api/v1/messages" + q)).text, ids)
    return out


def client_for(app: object, auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost", auth=auth)


async def capture_answers(tmp_path: Path) -> dict[str, str]:
    cfg = from_mapping({"mode": "capture", "data_dir": str(tmp_path), "hostname": "mx.example.test"})
    accounts = Accounts(cfg.db_path)
    store = CaptureStore(cfg.data_dir, cfg.capture, db_path=cfg.db_path, hostname=cfg.hostname)
    new: list[str] = []
    store.events.subscribe(lambda e: new.append(frame(e)) if e["Type"] == "new" else None)
    try:
        for n, data in enumerate(messages()):
            store.add_bytes(data, mail_from=f"sender{n}@sender.test",
                            rcpts=["bob@example.test", "audit+vip@example.test"], client="192.0.2.7:4000",
                            user="dev@example.test" if n == 1 else None, helo="client.sender.test", listener="smtp")
        store.set_read([store.latest_id() or ""], True)
        ctx = build_context(cfg, accounts, AuthGate.from_limits(cfg.limits), capture=store,
                            mail_store=MaildirStore(tmp_path), get_paused=lambda: False, set_paused=lambda v: None,
                            outbound=None)
        for _ in range(500):  # the index thread publishes just after each add returns
            if len(new) == len(messages()):
                break
            await asyncio.sleep(0.01)
        async with client_for(build(ctx)) as client:
            out = await record(client, "")
        ids = [json.loads(f)["Data"]["ID"] for f in new][::-1]  # the listing's order: newest first
        out["WebSocket frames of the new events"] = normalise("\n".join(new), ids)
        return out
    finally:
        store.close()


async def server_answers(tmp_path: Path) -> dict[str, str]:
    cfg = from_mapping({"data_dir": str(tmp_path), "hostname": "mx.example.test", "domains": ["example.test"]})
    accounts = Accounts(cfg.db_path)
    accounts.add(ADMIN, "pw", is_admin=True)
    mail = MaildirStore(tmp_path)
    try:
        inbox = mail.account_root(ADMIN)
        for n, data in enumerate(messages()):
            trace = (f"Return-Path: <sender{n}@sender.test>\nDelivered-To: {ADMIN}\nReceived: from client.sender.test "
                     f"(client.sender.test [192.0.2.7])\n\tby mx.example.test (courrier) with ESMTPS id Q{n}\n"
                     f"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\n\tfor <{ADMIN}>; {DATE}\n").encode()
            flags = frozenset({"\\Seen"}) if n == 4 else frozenset({"blue"} if n == 1 else ())
            mail.index.append(inbox, trace + data, flags)
        ctx = build_context(cfg, accounts, AuthGate.from_limits(cfg.limits), capture=None, mail_store=mail,
                            get_paused=lambda: False, set_paused=lambda v: None, outbound=None)
        async with client_for(build(ctx), (ADMIN, "pw")) as client:
            return await record(client, f"?mailbox={ADMIN}/INBOX")
    finally:
        mail.close()


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, str]]:
    return json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}


def check(golden: dict[str, dict[str, str]], mode: str, got: dict[str, str]) -> None:
    if os.environ.get("COURRIER_WRITE_GOLDEN") == "1":
        data = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
        data[mode] = got
        GOLDEN.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    want = golden[mode]
    assert sorted(got) == sorted(want)
    for key, text in got.items():
        assert text == want[key], key


async def test_capture_mode_json(tmp_path, golden):
    check(golden, "capture", await capture_answers(tmp_path))


async def test_server_mode_json(tmp_path, golden):
    check(golden, "server", await server_answers(tmp_path))
