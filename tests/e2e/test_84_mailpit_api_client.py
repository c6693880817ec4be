"""Scenario 84: npm `mailpit-api` (a Mailpit client other people wrote, pinned) calling the methods whose answers
issue 13's differences changed, against `courrier serve --capture`: send-API refusals and inline parts, the legacy
`count`, searches in Mailpit's syntax, `before=` paging, set-read refusals, tags, attachments, info counters."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.e2e.capture_support import send

VERSION = "2.1.0"
SCRIPT = r"""
import { MailpitClient } from "mailpit-api";
const [base] = process.argv.slice(2);
const mp = new MailpitClient(base);
const out = {};
const err = async (p) => { try { await p; return null; } catch (e) { return String(e.message); } };
out.headerRefused = await err(mp.sendMessage({From: {Email: "app@sender.test"}, To: [{Email: "bob@example.test"}],
  Subject: "s", Text: "t", Headers: {Subject: "other"}}));
const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const sent = await mp.sendMessage({From: {Email: "app@sender.test"}, To: [{Email: "bob@example.test"}],
  Subject: "from the client", Text: "text", HTML: '<img src="cid:logo">',
  Attachments: [{Filename: "logo.png", Content: "data:image/png;base64," + png, ContentID: "logo", ContentType: "image/png"}]});
out.sent = sent.ID;
const list = await mp.listMessages(0, 2);
out.listCount = list.count; out.listTotal = list.total;
const oldest = (await mp.listMessages(0, 50)).messages.at(-1);
const newest = list.messages[0];
out.before = (await mp.searchMessages({query: "subject", before: newest.Created})).messages.map((m) => m.ID);
out.addressed = (await mp.searchMessages({query: "addressed:alice@sender.test"})).messages.map((m) => m.ID);
out.substring = (await mp.searchMessages({query: "ody of tw"})).messages.map((m) => m.ID);
const summary = await mp.getMessageSummary(sent.ID);
out.inline = summary.Inline.map((a) => [a.FileName, a.ContentID]);
out.read = summary.Read;
out.attachment = (await mp.getMessageAttachment(sent.ID, summary.Inline[0].PartID)).size;
const plain = await mp.getMessageSummary(oldest.ID);
out.generatedId = plain.MessageID;
out.headers = (await mp.getMessageHeaders(oldest.ID))["Message-Id"];
out.source = (await mp.getMessageSource(oldest.ID)).slice(0, 80);
out.bothRefused = await err(mp.setReadStatus({IDs: [oldest.ID], Search: "subject:one", Read: true}));
out.setTags = await mp.setTags({IDs: [oldest.ID], Tags: ["client-tag"]});
out.tags = (await mp.getMessageSummary(oldest.ID)).Tags;
out.waited = (await mp.waitForMessage({query: "subject:two"}, 5000, 100)).Subject;
out.info = (await mp.getInfo()).RuntimeStats;
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("npm")
    (d / "package.json").write_text('{"private": true, "type": "module"}')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"mailpit-api@{VERSION}"], cwd=d, check=True,
                   capture_output=True, timeout=300)
    (d / "run.mjs").write_text(SCRIPT)
    return d


def test_mailpit_api_client(server_factory, client_dir):
    srv = server_factory(listeners=("smtp", "http"), capture=True,
                         sections={"capture": {"allowed_recipients": r"@example\.test$"}}).start()
    ids = [send(srv.ports["smtp"], ["bob@example.test"],
                f"From: Alice <alice@sender.test>\r\nTo: bob@example.test\r\nSubject: subject {n}\r\n\r\n"
                f"body of {n}\r\n".encode()) for n in ("one", "two")]
    import smtplib

    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
        s.ehlo("x.test")
        s.mail("a@sender.test")
        assert s.rcpt("nobody@elsewhere.test")[0] == 550
    base = f"http://127.0.0.1:{srv.ports['http']}"
    deadline = time.monotonic() + 10
    while httpx.get(f"{base}/api/v1/messages").json()["total"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    p = subprocess.run(["node", "run.mjs", base], cwd=client_dir, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert "400" in out["headerRefused"] and 'cannot overwrite header: \\"Subject\\"' in out["headerRefused"]
    assert out["listCount"] == 2 and out["listTotal"] == 3
    assert out["before"] == ids[::-1]  # strictly older than the message the client sent
    assert out["addressed"] == ids[::-1] and out["substring"] == [ids[1]]
    assert out["inline"] == [["logo.png", "logo"]] and out["read"] is True and out["attachment"] == 70
    assert out["generatedId"] == f"{ids[0]}@mailpit" and out["headers"] == [f"<{ids[0]}@mailpit>"]
    assert out["source"].startswith(f"Message-ID: <{ids[0]}@mailpit>\r\n")
    assert "400" in out["bothRefused"] and "not both" in out["bothRefused"]
    assert out["setTags"] == "ok" and out["tags"] == ["client-tag"]
    assert out["waited"] == "subject two"
    assert out["info"]["SMTPRejected"] == 1 and out["info"]["SMTPAccepted"] == 3
