"""Scenario 81: the Mailpit endpoints that answered 404 before issue 13 — chaos, swagger, tags, thumbnails, link
check, HTML check — over the real HTTP server of `courrier serve --capture`, each test naming the Mailpit source
file whose behaviour it checks."""

from __future__ import annotations

import smtplib

import httpx
import pytest

from tests.spamd import GTUBE, Spamd
from tests.support import Server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One capture server for the module, chaos enabled."""
    s = Server(tmp_path_factory.mktemp("mp81"), listeners=("smtp", "http"), capture=True,
               sections={"capture": {"chaos": True}})
    s.start()
    yield s
    s.stop()


def api(s: Server) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{s.ports['http']}", timeout=30)


# ---------------------------------------------------------------- chaos (server/apiv1/chaos.go,
#                                                                   internal/smtpd/chaos/chaos.go, smtpd.go)

DEFAULTS = {"Sender": {"ErrorCode": 451, "Probability": 0}, "Recipient": {"ErrorCode": 451, "Probability": 0},
            "Authentication": {"ErrorCode": 535, "Probability": 0}}


def test_chaos_disabled_answers_400(server_factory):
    s = server_factory(listeners=("smtp", "http"), capture=True).start()
    with api(s) as c:
        for r in (c.get("/api/v1/chaos"), c.put("/api/v1/chaos", json={})):
            assert (r.status_code, r.text) == (400, "Chaos is not enabled")


def test_chaos_put_resets_omitted_and_checks_ranges(srv):
    with api(srv) as c:
        assert c.get("/api/v1/chaos").json() == DEFAULTS
        r = c.put("/api/v1/chaos", json={"Recipient": {"ErrorCode": 452, "Probability": 5}})
        assert r.status_code == 200
        assert r.json() == {**DEFAULTS, "Recipient": {"ErrorCode": 452, "Probability": 5}}
        assert c.put("/api/v1/chaos", json={"Sender": {"Probability": 10}}).json()["Recipient"] == \
            {"ErrorCode": 451, "Probability": 0}  # omitted: reset, as Mailpit's SetFromStruct
        r = c.put("/api/v1/chaos", json={"Sender": {"ErrorCode": 399, "Probability": 1}})
        assert (r.status_code, r.text) == (400, "error code must be between 400 and 599")
        r = c.put("/api/v1/chaos", json={"Sender": {"ErrorCode": 500, "Probability": 101}})
        assert (r.status_code, r.text) == (400, "probability must be between 0 and 100")
        assert c.get("/api/v1/chaos").json()["Sender"] == {"ErrorCode": 451, "Probability": 10}  # unchanged
        assert c.put("/api/v1/chaos", json={}).json() == DEFAULTS


def test_chaos_triggers_fire_in_smtp(srv):
    with api(srv) as c:
        c.put("/api/v1/chaos", json={"Sender": {"ErrorCode": 421, "Probability": 100}})
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo("app.test")
            assert s.mail("a@sender.test") == (421, b"Chaos sender error")
        c.put("/api/v1/chaos", json={"Recipient": {"ErrorCode": 550, "Probability": 100}})
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo("app.test")
            assert s.mail("a@sender.test")[0] == 250
            assert s.rcpt("b@x.test") == (550, b"Chaos recipient error")
        c.put("/api/v1/chaos", json={"Authentication": {"Probability": 100}})
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.ehlo("app.test")
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                s.login("user", "pass")
            assert (e.value.smtp_code, e.value.smtp_error) == (535, b"Chaos authentication error")
        c.put("/api/v1/chaos", json={})
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.login("user", "pass")
            assert s.sendmail("a@sender.test", ["b@x.test"], b"Subject: calm\r\n\r\nx\r\n") == {}


def send(s: Server, raw: bytes, rcpts: tuple[str, ...] = ("bob@example.test",)) -> str:
    """Sends one message; returns its capture ID (the 250's "queued as")."""
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.ehlo("app.test")
        c.mail("app@sender.test")
        for r in rcpts:
            c.rcpt(r)
        code, text = c.data(raw)
    assert code == 250, text
    return text.decode().rsplit(" ", 1)[1]


# ---------------------------------------------------------------- swagger (server/ui/api/v1/swagger.json)

def test_swagger_is_mailpits(srv):
    from pathlib import Path
    ref = Path(__file__).parents[1] / "web" / "data" / "mailpit-api-v1.swagger.json"  # Mailpit's, copied
    with api(srv) as c:
        r = c.get("/api/v1/swagger.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["swagger"] == "2.0" and "/api/v1/message/{ID}/html-check" in doc["paths"]
    import json
    assert doc == json.loads(ref.read_text())


# ---------------------------------------------------------------- tags (server/apiv1/tags.go,
#                                                                   internal/tools/tags.go, internal/storage/tags.go)

def test_tags_cleaned_and_unique(srv):
    a = send(srv, b"Subject: tags a\r\n\r\nx\r\n")
    b = send(srv, b"Subject: tags b\r\n\r\nx\r\n")
    with api(srv) as c:
        r = c.put("/api/v1/tags", json={"IDs": [a, b], "Tags": ["  Sales  /  2024 ", "x!y", "sales / 2024", "!!!"]})
        assert (r.status_code, r.text) == (200, "ok")
        assert c.get(f"/api/v1/message/{a}").json()["Tags"] == ["Sales 2024", "x y"]
        assert c.put("/api/v1/tags", json={"Tags": ["ignored"]}).text == "ok"  # no IDs: nothing changes
        assert "ignored" not in c.get("/api/v1/tags").json()
        assert c.put("/api/v1/tags", json={"IDs": [b]}).text == "ok"  # no Tags: b's tags removed
        assert c.get(f"/api/v1/message/{b}").json()["Tags"] == []


def test_tag_rename_and_delete_rules(srv):
    a = send(srv, b"Subject: rename\r\nX-Tags: alpha, beta\r\n\r\nx\r\n")
    with api(srv) as c:
        assert {"alpha", "beta"} <= set(c.get("/api/v1/tags").json())
        r = c.put("/api/v1/tags/nothere", json={"Name": "x"})
        assert (r.status_code, r.text) == (400, "tag not found: nothere")
        r = c.put("/api/v1/tags/alpha", json={"Name": "beta"})
        assert (r.status_code, r.text) == (400, "tag already exists: beta")
        r = c.put("/api/v1/tags/alpha", json={"Name": " !! "})
        assert r.status_code == 400
        assert c.put("/api/v1/tags/alpha", json={"Name": "Gamma/1"}).text == "ok"
        assert sorted(c.get(f"/api/v1/message/{a}").json()["Tags"]) == ["Gamma 1", "beta"]
        assert c.put("/api/v1/tags/gamma 1", json={"Name": "GAMMA 1"}).text == "ok"  # case-only change
        r = c.delete("/api/v1/tags/nothere")
        assert (r.status_code, r.text) == (400, "tag not found: nothere")
        assert c.delete("/api/v1/tags/beta").text == "ok"
        assert c.get(f"/api/v1/message/{a}").json()["Tags"] == ["GAMMA 1"]


# ---------------------------------------------------------------- thumbnails (server/apiv1/thumbnails.go)

def _png(size: tuple[int, int], colour: tuple[int, int, int, int]) -> bytes:
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, "PNG")
    return out.getvalue()


def test_thumbnails(srv):
    import io
    from email.message import EmailMessage

    from PIL import Image
    m = EmailMessage()
    m["Subject"] = "pictures"
    m.set_content("see attached")
    m.add_attachment(_png((400, 200), (255, 0, 0, 255)), maintype="image", subtype="png", filename="big.png")
    m.add_attachment(_png((20, 10), (0, 0, 255, 0)), maintype="image", subtype="png", filename="clear.png")
    m.add_attachment(b"not an image", maintype="image", subtype="png", filename="broken.png")
    m.add_attachment(b"a,b\n", maintype="text", subtype="csv", filename="data.csv")
    msg_id = send(srv, m.as_bytes())
    with api(srv) as c:
        parts = {a["FileName"]: a["PartID"] for a in c.get(f"/api/v1/message/{msg_id}").json()["Attachments"]}
        thumbs = {}
        for name, part in parts.items():
            r = c.get(f"/api/v1/message/{msg_id}/part/{part}/thumb")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", name
            assert r.headers["content-disposition"] == f'filename="{name}"'
            thumbs[name] = Image.open(io.BytesIO(r.content))
            assert (thumbs[name].format, thumbs[name].size) == ("JPEG", (180, 120)), name
        assert c.get(f"/api/v1/message/{msg_id}/part/9.9/thumb").status_code == 404
    big = thumbs["big.png"].convert("RGB")
    assert all(abs(a - b) < 40 for a, b in zip(big.getpixel((5, 5)), (255, 0, 0), strict=True))  # filled, cropped
    clear = thumbs["clear.png"].convert("RGB")
    assert clear.getpixel((90, 60))[0] > 230  # transparent → white, not black
    for name in ("broken.png", "data.csv"):  # Mailpit's blankImage: all white
        assert thumbs[name].convert("L").getextrema()[0] > 240


# ---------------------------------------------------------------- link check (internal/linkcheck/main.go, status.go)

@pytest.fixture(scope="module")
def web():
    """A loopback HTTP server the links point to."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            code = {"/ok": 200, "/gone": 404, "/moved": 301}.get(self.path, 500)
            self.send_response(code)
            if code == 301:
                self.send_header("Location", "/ok")
            self.end_headers()

        def log_message(self, *a):
            pass

    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{s.server_port}"
    s.shutdown()
    s.server_close()


def _links_message(base: str) -> bytes:
    return (f"Subject: links\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
            f"--b\r\nContent-Type: text/plain\r\n\r\nText link {base}/gone\r\n"
            f"--b\r\nContent-Type: text/html\r\n\r\n<a href=\"{base}/ok\">ok</a> <img src=\"{base}/moved\">\r\n"
            f"--b--\r\n").encode()


def test_link_check_internal_allowed(server_factory, web):
    s = server_factory(listeners=("smtp", "http"), capture=True,
                       sections={"capture": {"link_check_internal": True}}).start()
    msg_id = send(s, _links_message(web))
    with api(s) as c:
        r = c.get(f"/api/v1/message/{msg_id}/link-check")
        assert r.status_code == 200
        body = r.json()
        assert body["Errors"] == 1
        assert {x["URL"].replace(web, ""): (x["StatusCode"], x["Status"]) for x in body["Links"]} == {
            "/ok": (200, "OK"), "/moved": (301, "Moved Permanently"), "/gone": (404, "Not Found")}
        body = c.get("/api/v1/message/latest/link-check?follow=true").json()
        assert {x["URL"].replace(web, ""): x["StatusCode"] for x in body["Links"]}["/moved"] == 200
        assert c.get("/api/v1/message/nope/link-check").status_code == 404


def test_link_check_refuses_internal_by_default(srv, web):
    msg_id = send(srv, _links_message(web))
    with api(srv) as c:
        body = c.get(f"/api/v1/message/{msg_id}/link-check").json()
    assert body["Errors"] == 3
    assert {(x["StatusCode"], x["Status"]) for x in body["Links"]} == {(451, "Blocked private/reserved address")}


# ---------------------------------------------------------------- HTML check (server/apiv1/other.go HTMLCheck,
#                                                                   internal/htmlcheck/main.go)

def test_html_check(srv):
    html = ('<html><head><style>.b { display: flex }</style></head><body><div class="b">x</div>'
            '<script>go()</script><img src="https://img.test/a.webp"></body></html>')
    raw = (f"Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n").encode()
    msg_id = send(srv, raw)
    text_id = send(srv, b"Subject: text only\r\n\r\nno html here\r\n")
    with api(srv) as c:
        r = c.get(f"/api/v1/message/{msg_id}/html-check")
        assert r.status_code == 200
        body = r.json()
        assert list(body) == ["Warnings", "Platforms", "Total"]
        assert set(body["Total"]) == {"Tests", "Nodes", "Supported", "Partial", "Unsupported"}
        found = {w["Slug"]: w["Score"]["Found"] for w in body["Warnings"]}
        assert {"html-script", "css-display-flex", "image-webp", "html-style"} <= set(found)
        assert body["Warnings"][0]["Slug"] == "html-script"
        w = next(w for w in body["Warnings"] if w["Slug"] == "css-display-flex")
        assert set(w) == {"Slug", "Title", "Description", "URL", "Category", "Tags", "Keywords", "Results",
                          "NotesByNumber", "Score"}
        assert w["Results"] and {"yes", "no", "partial"} >= {x["Support"] for x in w["Results"]}
        assert "Gmail" in body["Platforms"]["desktop-webmail"]
        r = c.get(f"/api/v1/message/{text_id}/html-check")
        assert (r.status_code, r.text) == (400, "message does not contain HTML")
        assert c.get("/api/v1/message/nope/html-check").status_code == 404


# ---------------------------------------------------------------- SpamAssassin check (server/apiv1/other.go
#                                   SpamAssassinCheck, internal/spamassassin/spamassassin.go, spamc/spamc.go)

@pytest.fixture(scope="module")
def spamd():
    """Debian's spamd on loopback, network tests off (tests/spamd.py)."""
    with Spamd() as s:
        yield s


def test_sa_check_with_debian_spamd(server_factory, spamd):
    s = server_factory(listeners=("smtp", "http"), capture=True,
                       sections={"capture": {"spamassassin": spamd.address}}).start()
    spam = send(s, f"Subject: offer\r\nFrom: a@sender.test\r\nTo: b@example.test\r\n\r\n{GTUBE}\r\n".encode())
    ham = send(s, b"Subject: lunch\r\nFrom: a@sender.test\r\nTo: b@example.test\r\nDate: Sat, 5 Dec 2026 10:00:00 +0000"
                  b"\r\nMessage-ID: <l1@sender.test>\r\n\r\nSee you at noon.\r\n")
    with api(s) as c:
        body = c.get(f"/api/v1/message/{spam}/sa-check").json()
        assert list(body) == ["IsSpam", "Error", "Score", "Rules"]
        assert body["IsSpam"] is True and body["Error"] == "" and body["Score"] >= 1000
        gtube = next(r for r in body["Rules"] if r["Name"] == "GTUBE")
        assert gtube["Score"] >= 1000 and gtube["Description"] == "BODY: Generic Test for Unsolicited Bulk Email"
        assert body["Score"] == int(body["Score"] * 10) / 10  # floored to one decimal
        body = c.get(f"/api/v1/message/{ham}/sa-check").json()
        assert body["IsSpam"] is False and body["Error"] == "" and body["Score"] < 5
        assert isinstance(body["Rules"], list)
        assert c.get("/api/v1/message/nope/sa-check").status_code == 404


def test_sa_check_unconfigured_and_unreachable(srv, server_factory):
    msg_id = send(srv, b"Subject: x\r\n\r\nx\r\n")
    with api(srv) as c:
        r = c.get(f"/api/v1/message/{msg_id}/sa-check")
        assert (r.status_code, r.text) == (400, "no SpamAssassin service defined")
    from tests.support import free_port
    s = server_factory(listeners=("smtp", "http"), capture=True,
                       sections={"capture": {"spamassassin": f"127.0.0.1:{free_port()}"}}).start()
    msg_id = send(s, b"Subject: x\r\n\r\nx\r\n")
    with api(s) as c:
        body = c.get(f"/api/v1/message/{msg_id}/sa-check").json()
    assert body["IsSpam"] is False and body["Score"] == 0 and body["Rules"] is None
    assert "cannot connect to spamd" in body["Error"]


# ---------------------------------------------------------------- npm mailpit-api against courrier

MAILPIT_API_SCRIPT = r"""
const { MailpitClient } = require(PKG);
const [base, id, linkID] = process.argv.slice(1);
(async () => {
  const m = new MailpitClient(base);
  const out = {};
  out.chaos0 = await m.getChaosTriggers();
  out.chaos1 = await m.setChaosTriggers({ Recipient: { ErrorCode: 452, Probability: 0 } });
  out.chaosReset = await m.setChaosTriggers();
  out.setTags = await m.setTags({ IDs: [id], Tags: ["npm one", "npm/two"] });
  out.tags = await m.getTags();
  out.rename = await m.renameTag("npm one", "npm renamed");
  out.del = await m.deleteTag("npm two");
  out.summaryTags = (await m.getMessageSummary(id)).Tags;
  try { await m.renameTag("no such tag", "x"); out.missing = "no error"; } catch (e) { out.missing = e.message; }
  const html = await m.htmlCheck(id);
  out.html = { total: html.Total, slugs: html.Warnings.map((w) => w.Slug) };
  const links = await m.linkCheck(linkID);
  const followed = await m.linkCheck(linkID, true);
  out.links = { errors: links.Errors, codes: links.Links.map((l) => [l.URL, l.StatusCode, l.Status]),
                followed: followed.Links.map((l) => [l.URL, l.StatusCode]) };
  out.sa = await m.spamAssassinCheck(id);
  const thumb = await m.getAttachmentThumbnail(id, "2");
  out.thumb = { type: thumb.type, size: thumb.size };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_npm_mailpit_api(server_factory, spamd, web):
    import json

    from tests.npm import npm_package

    pkg = npm_package("mailpit-api", "2.1.0")
    s = server_factory(listeners=("smtp", "http"), capture=True, sections={"capture": {
        "chaos": True, "link_check_internal": True, "spamassassin": spamd.address}}).start()
    raw = (b"Subject: npm\r\nFrom: a@sender.test\r\nTo: b@example.test\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/html\r\n\r\n"
           b"<html><body><form></form><p style=\"display:flex\">x</p></body></html>\r\n--m\r\n"
           b"Content-Type: image/png\r\nContent-Disposition: attachment; filename=p.png\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n"
           b"--m--\r\n")
    msg_id = send(s, raw)
    link_id = send(s, _links_message(web))
    from tests.npm import run_node
    out = json.loads(run_node(MAILPIT_API_SCRIPT.replace("process.argv.slice(1)",
                                                         json.dumps([f"http://127.0.0.1:{s.ports['http']}", msg_id,
                                                                     link_id])), pkg))
    assert out["chaos0"] == DEFAULTS and out["chaosReset"] == DEFAULTS
    assert out["chaos1"]["Recipient"] == {"ErrorCode": 452, "Probability": 0}
    assert out["setTags"] == out["rename"] == out["del"] == "ok"
    assert {"npm one", "npm two"} <= set(out["tags"])
    assert out["summaryTags"] == ["npm renamed"]
    assert "400" in out["missing"] and "tag not found: no such tag" in out["missing"]
    assert {"html-form", "css-display-flex"} <= set(out["html"]["slugs"]) and out["html"]["total"]["Nodes"] >= 2
    codes = {u.replace(web, ""): (c, t) for u, c, t in out["links"]["codes"]}
    assert codes == {"/ok": (200, "OK"), "/moved": (301, "Moved Permanently"), "/gone": (404, "Not Found")}
    assert out["links"]["errors"] == 1
    assert {u.replace(web, ""): c for u, c in out["links"]["followed"]}["/moved"] == 200
    assert out["sa"]["Error"] == "" and out["sa"]["IsSpam"] == (out["sa"]["Score"] >= 5) and out["sa"]["Rules"]
    assert out["thumb"]["type"] == "image/jpeg" and out["thumb"]["size"] > 100


def test_webui_shows_chaos_and_spamassassin(srv, server_factory):
    """CONTRACT "third turn": /api/v1/webui names [capture] chaos and spamassassin as Mailpit's ChaosEnabled and
    SpamAssassin (server/apiv1/webui.go)."""
    with api(srv) as c:
        ui = c.get("/api/v1/webui").json()
    assert (ui["ChaosEnabled"], ui["SpamAssassin"]) == (True, False)
    s = server_factory(listeners=("smtp", "http"), capture=True,
                       sections={"capture": {"spamassassin": "127.0.0.1:783"}}).start()
    with api(s) as c:
        ui = c.get("/api/v1/webui").json()
    assert (ui["ChaosEnabled"], ui["SpamAssassin"]) == (False, True)
