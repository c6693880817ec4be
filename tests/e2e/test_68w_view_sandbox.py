"""Scenario 68w: `/view/{ID}.html` is served sandboxed (issue 11, item 19): CSP `sandbox` (no scripts, no
refresh, an opaque origin), `form-action 'none'`, no meta refresh in the page — and it still shows the message's
HTML as Mailpit does. The UI's sanitized view (/api/courrier/message/{ID}/html) has no meta refresh either."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.capture_support import send

MESSAGE = (Path(__file__).resolve().parents[1] / "data" / "hostile" / "meta-refresh.eml").read_bytes()


def test_view_html_is_sandboxed_without_meta_refresh(server_factory):
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    mid = send(srv.ports["smtp"], ["victim@example.test"], MESSAGE)
    time.sleep(0.2)
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.ports['http']}", timeout=10) as c:
        r = c.get(f"/view/{mid}.html")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = [d.strip() for d in r.headers["content-security-policy"].split(";")]
        assert csp[0].split()[0] == "sandbox" and "allow-scripts" not in csp[0]
        assert "form-action 'none'" in csp and "script-src 'none'" in csp and "default-src 'none'" in csp
        assert any(d.startswith("img-src") for d in csp) and any("'unsafe-inline'" in d for d in csp if
                                                                   d.startswith("style-src"))
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "refresh" not in r.text.lower() and "evil.example/\"" not in r.text
        assert "<p>hello</p>" in r.text and "<form" in r.text  # the HTML as sent, the CSP keeps it inert
        safe = c.get(f"/api/courrier/message/{mid}/html")
        assert "refresh" not in safe.text.lower() and "<meta http-equiv" not in safe.text.lower()
        assert "<script" not in safe.text and "<form" not in safe.text and "<p>hello</p>" in safe.text
