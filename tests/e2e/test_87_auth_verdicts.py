"""Scenario 87: SPF, DKIM and DMARC verdicts on captured mail — behind the fake DNS named in ``[delivery]
nameservers`` (a signed message from its SPF-listed address is authentic, a From of that domain sent from
elsewhere is forged, a domain with no DNS is unverifiable), offline (no answering nameserver: unverifiable, with
the reason, within ``[auth] check_timeout``), in the API and in Chromium's envelope panel."""

from __future__ import annotations

import time

import httpx
import pytest

from courrier.mailauth import dkim
from tests.dnsfake import FakeDNS
from tests.e2e.capture_support import send
from tests.e2e.ui_support import mail, new_page, shoot, wait_for
from tests.support import free_port


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def capture(server_factory, name: str, nameserver: str, timeout: str = "3s"):
    return server_factory(name, listeners=("smtp", "http"), capture=True, sections={
        "delivery": {"nameservers": [nameserver]}, "auth": {"check_timeout": timeout}}).start()


def signed(key: dkim.SigningKey, subject: str) -> bytes:
    body = mail(subject, "Your order shipped.", sender="Shop <news@shop.test>").as_bytes().replace(b"\n", b"\r\n")
    return dkim.sign(body, key) + body


def test_verdicts_behind_dns(server_factory, dns, browser):
    key = dkim.signing_key("shop.test", "s1", dkim.generate_pem("rsa", 1024))
    dns.update({"shop.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, key.record_name: {"TXT": [key.record]},
                "_dmarc.shop.test": {"TXT": ["v=DMARC1; p=reject"]}})
    srv = capture(server_factory, "dns", dns.address)
    base = f"http://127.0.0.1:{srv.ports['http']}"
    good = send(srv.ports["smtp"], ["dev@example.test"], signed(key, "Signed and listed"), "bounce@shop.test")
    forged = send(srv.ports["smtp"], ["dev@example.test"], mail("Wire the money", sender="ceo@shop.test").as_bytes(),
                  "x@elsewhere.test")
    unknown = send(srv.ports["smtp"], ["dev@example.test"], mail("Hello", sender="a@nodns.test").as_bytes(),
                   "a@nodns.test")
    with httpx.Client(base_url=base, timeout=20) as c:
        r = c.get(f"/api/courrier/message/{good}/auth").json()
        assert r["Verdict"] == "authentic", r
        assert r["SPF"]["Result"] == "pass" and r["SPF"]["Domain"] == "shop.test"
        assert [(k["Result"], k["Domain"], k["Selector"]) for k in r["DKIM"]] == [("pass", "shop.test", "s1")]
        assert r["DMARC"]["Result"] == "pass" and r["DMARC"]["Policy"] == "reject"
        assert "dkim=pass" in r["Header"] and "dmarc=pass" in r["Header"]
        r = c.get(f"/api/courrier/message/{forged}/auth").json()
        assert r["Verdict"] == "forged" and r["DMARC"]["Result"] == "fail" and r["DKIM"] == []
        r = c.get(f"/api/courrier/message/{unknown}/auth").json()
        assert r["Verdict"] == "unverifiable" and r["DMARC"]["Result"] == "none" and r["Why"]
        # a report is kept; ?recheck=1 asks the DNS again (say, once the record is published)
        asked = len(dns.queries)
        c.get(f"/api/courrier/message/{unknown}/auth")
        assert len(dns.queries) == asked
        dns.update({"nodns.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, "_dmarc.nodns.test": {"TXT": ["v=DMARC1; p=none"]}})
        r = c.get(f"/api/courrier/message/{unknown}/auth", params={"recheck": "1"}).json()
        assert r["SPF"]["Result"] == "pass" and r["Verdict"] == "authentic"
        assert c.get("/api/courrier/message/NOPE/auth").status_code == 404

    page = new_page(browser)
    try:
        page.goto(f"{base}/view/{good}")
        wait_for(lambda: page.get_attribute("#env-auth", "data-verdict") == "authentic", what="verdict shown")
        text = page.locator("#env-auth").inner_text()
        assert "SPF pass" in text and "DKIM d=shop.test pass" in text and "DMARC pass" in text
        shoot(page, "87-auth-authentic")
        page.goto(f"{base}/view/{forged}")
        wait_for(lambda: page.get_attribute("#env-auth", "data-verdict") == "forged", what="forged shown")
        assert "DMARC fail" in page.locator("#env-auth").inner_text()
        shoot(page, "87-auth-forged")
    finally:
        page.context.close()


def test_offline_is_unverifiable(server_factory):
    srv = capture(server_factory, "offline", f"127.0.0.1:{free_port()}", timeout="2s")
    msg_id = send(srv.ports["smtp"], ["dev@example.test"], mail("Offline", sender="app@shop.test").as_bytes(),
                  "app@shop.test")
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=20) as c:
        t0 = time.monotonic()
        r = c.get(f"/api/courrier/message/{msg_id}/auth").json()
        assert time.monotonic() - t0 < 6  # within check_timeout (2 s) and its grace
    assert r["Verdict"] == "unverifiable"
    assert r["SPF"]["Result"] == "temperror" and r["DMARC"]["Result"] == "temperror"
    assert r["Why"] and r["SPF"]["Reason"]
