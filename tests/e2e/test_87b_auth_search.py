"""Scenario 87b: searching captured mail by its SPF/DKIM/DMARC outcome (``auth:``, issue 14) — nobody opened the
messages first: the search checks those without a verdict (behind the fake DNS of ``[delivery] nameservers``), keeps
the outcome, and the same terms drive bulk changes, the wait endpoint and a capture mailbox."""

from __future__ import annotations

import httpx
import pytest

from courrier.mailauth import dkim
from tests.dnsfake import FakeDNS
from tests.e2e.capture_support import send
from tests.e2e.test_87_auth_verdicts import capture, signed
from tests.e2e.ui_support import mail


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_auth_search(server_factory, dns):
    key = dkim.signing_key("shop.test", "s1", dkim.generate_pem("rsa", 1024))
    dns.update({"shop.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, key.record_name: {"TXT": [key.record]},
                "_dmarc.shop.test": {"TXT": ["v=DMARC1; p=reject"]}})
    srv = capture(server_factory, "authsearch", dns.address)
    port = srv.ports["smtp"]
    good = send(port, ["dev@example.test"], signed(key, "Signed and listed"), "bounce@shop.test")
    forged = send(port, ["dev@example.test"], mail("Wire the money", sender="ceo@shop.test").as_bytes(),
                  "x@elsewhere.test")
    unknown = send(port, ["ops@example.test"], mail("Hello", sender="a@nodns.test").as_bytes(), "a@nodns.test")
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=30) as c:
        def ids(q: str, **params) -> list[str]:
            r = c.get("/api/v1/search", params={"query": q, **params})
            assert r.status_code == 200, r.text
            return sorted(m["ID"] for m in r.json()["messages"])

        assert ids("auth:fail") == [forged]  # checked by the search itself
        assert ids("auth:pass") == [good]
        assert ids("auth:unverifiable") == [unknown]
        assert ids("-auth:fail") == sorted([good, unknown])
        assert ids("auth:dmarc:fail") == [forged] and ids("auth:dkim=pass") == [good]
        assert ids("auth:spf:pass") == [good]  # SPF checks MAIL FROM's domain: elsewhere.test has no record
        assert ids("auth:dmarc:fail subject:money") == [forged]
        assert ids("auth:fail", mailbox="ops@example.test") == []  # a capture mailbox scopes it too
        # the outcome is kept: a second search asks the DNS nothing
        asked = len(dns.queries)
        assert ids("auth:pass") == [good] and len(dns.queries) == asked
        # the message view shows the same report
        assert c.get(f"/api/courrier/message/{forged}/auth").json()["Verdict"] == "forged"
        # a message that arrives later is checked by the next search, and by the wait endpoint
        late = send(port, ["dev@example.test"], mail("Me again", sender="boss@shop.test").as_bytes(), "y@else.test")
        r = c.get("/api/courrier/wait", params={"query": "auth:fail subject:again", "timeout": 10})
        assert r.status_code == 200 and r.json()["ID"] == late
        # bulk: mark read, then delete, every forged message
        assert c.put("/api/v1/messages", json={"Read": True, "Search": "auth:fail"}).status_code == 200
        assert {m["ID"]: m["Read"] for m in c.get("/api/v1/messages").json()["messages"]} == {
            good: False, forged: True, unknown: False, late: True}
        assert c.delete("/api/v1/search", params={"query": "auth:fail"}).status_code == 200
        assert sorted(m["ID"] for m in c.get("/api/v1/messages").json()["messages"]) == sorted([good, unknown])
