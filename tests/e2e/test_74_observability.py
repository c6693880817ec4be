"""Scenario 74: what an administrator watches — /metrics scraped and parsed by the Prometheus client's own parser,
/livez and /readyz, log lines with stable keys, and ``courrier status`` while the server runs and after it stopped.

One message accepted on the MX role, one refused at end of DATA on submission (a From the account does not own), one
queued for a remote domain whose MX refuses connections (so it is deferred and stays queued), an IMAP session held
open: each shows in the counters, the queue gauge and the connection gauge, and the deferral in `status`'s last
errors. In capture mode the three names of the contract are there too, and ``[http] metrics = false`` removes the
route.
"""

from __future__ import annotations

import base64
import imaplib
import re
import smtplib

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, message, wait_for
from tests.support import free_port

ADMIN, PASSWORD = "admin@example.test", "secret"
LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) [a-z0-9_]+(\.[a-z0-9_]+)+'
                      r'( [a-z_]+=("([^"\\]|\\.)*"|[^\s"]+))*$')


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def auth() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()}


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_metrics_health_logs_and_status(server_factory, dns):
    dead = free_port()  # nothing listens here: the remote MX refuses connections
    dns.set("remote.test", {"MX": [(10, "mx.remote.test")]})
    dns.set("mx.remote.test", {"A": ["127.0.0.1"]})
    s = server_factory(listeners=("smtp", "submission", "imap", "http"),
                       sections={"delivery": {"nameservers": [dns.address], "mx_port": dead, **FAST,
                                              "retry_first": "1h"}})
    s.add_user(ADMIN, PASSWORD, "--admin")
    s.start()
    base = f"http://127.0.0.1:{s.ports['http']}"
    assert httpx.get(base + "/livez").status_code == 200 and httpx.get(base + "/readyz").status_code == 200
    assert httpx.get(base + "/metrics").status_code == 401  # the API's auth: admin accounts only

    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.sendmail("x@else.test", [ADMIN], message("x@else.test", [ADMIN], "accepted").as_bytes())
    with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=10) as c:
        c.login(ADMIN, PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            c.sendmail(ADMIN, ["bob@remote.test"], message("ceo@elsewhere.test", ["bob@remote.test"], "forged")
                       .as_bytes())
        assert refused.value.smtp_code == 553
        c.sendmail(ADMIN, ["bob@remote.test"], message(ADMIN, ["bob@remote.test"], "queued").as_bytes())
    wait_for(lambda: "delivery.deferred" in s.log(), what="the deferred attempt")
    held = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=10)

    r = httpx.get(base + "/metrics", headers=auth())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE courrier_smtp_messages_total counter" in r.text
    m = samples(r.text)
    assert m[("courrier_smtp_messages_total", (("listener", "smtp"), ("result", "accepted")))] == 1
    assert m[("courrier_smtp_messages_total", (("listener", "submission"), ("result", "accepted")))] == 1
    assert m[("courrier_smtp_messages_total", (("listener", "submission"), ("result", "rejected")))] == 1
    assert m[("courrier_deliveries_total", (("outcome", "deferred"),))] >= 1
    assert m[("courrier_queue_messages", ())] == 1
    assert m[("courrier_connections", (("protocol", "imap"),))] == 1
    om = httpx.get(base + "/metrics", headers={**auth(), "Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")
    held.logout()

    st = s.cli("status")
    out = st.stdout
    assert out.startswith("server: running (pid ")
    assert re.search(rf"^  smtp\s+127\.0\.0\.1:{s.ports['smtp']}\s+MX$", out, re.M), out
    assert re.search(rf"^  http\s+127\.0\.0\.1:{s.ports['http']}\s", out, re.M), out
    assert re.search(r"^queue: 1 message \(oldest \d+s old, next attempt in \d+[smh]\)$", out, re.M), out
    wait_for(lambda: "delivery.deferred" in s.cli("status").stdout, what="the deferral among the last errors")

    assert s.stop() == 0
    after = s.cli("status", check=False)
    assert after.returncode == 3 and after.stdout.startswith("server: not running (stopped ")
    assert "queue: 1 message" in after.stdout
    for line in s.log().splitlines():  # every log line: timestamp level event key=value…
        if line.startswith("20"):
            assert LOG_LINE.match(line), line
    assert re.search(r" smtp\.message qid=\S+ sid=\S+ listener=smtp ip=127\.0\.0\.1 .*result=250", s.log())


def test_capture_mode_metrics_and_switch(server_factory):
    s = server_factory(listeners=("smtp", "http"), capture=True)
    s.start()
    with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
        c.sendmail("a@x.test", ["b@y.test"], b"Subject: hi\r\n\r\nhello\r\n")
    text = httpx.get(f"http://127.0.0.1:{s.ports['http']}/metrics").text
    m = samples(text)
    assert m[("courrier_smtp_messages_total", (("listener", "smtp"), ("result", "accepted")))] == 1
    assert ("courrier_queue_messages", ()) in m and ("courrier_connections", (("protocol", "smtp"),)) in m
    s.stop()

    off = server_factory("off", listeners=("http",), capture=True, sections={"http": {"metrics": False}})
    off.start()
    assert httpx.get(f"http://127.0.0.1:{off.ports['http']}/metrics").status_code == 404
