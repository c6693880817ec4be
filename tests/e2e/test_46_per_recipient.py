"""Scenario 46: per-recipient outcomes in one transaction, against a courrier capture server whose recipients
fail by address: ok@ is delivered, permfail@ bounces (and only it is in the DSN), tempfail@ stays queued and is
retried without resending to the others."""

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.capture_support import capture_server, files
from tests.e2e.mta_helpers import inbox, make_sender, submit, wait_for


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_mixed_outcomes(server_factory, dns):
    c = capture_server(server_factory, "c", fail_by_address=True).start()
    dns.set("c.test", {"MX": [(10, "mx.c.test")]})
    dns.set("mx.c.test", {"A": ["127.0.0.1"]})
    a = make_sender(server_factory, dns, c.ports["smtp"]).start()
    submit(a, "alice@a.test", ["ok@c.test", "permfail@c.test", "tempfail@c.test"], "mixed")
    wait_for(lambda: len(files(c.data)) == 1, what="the accepted copy in the capture store")
    dsn = wait_for(lambda: [m for m in inbox(a, "alice@a.test") if m.get_content_type() == "multipart/report"],
                   what="a DSN")[0]
    status = dsn.get_payload()[1].as_string()
    assert "permfail@c.test" in status and "tempfail@c.test" not in status and "ok@c.test" not in status
    def attempts():
        return max([int(w[9:]) for w in a.cli("queue", "list").stdout.split() if w.startswith("attempts=")] or [0])

    wait_for(lambda: attempts() >= 2, what="tempfail retried")
    listing = a.cli("queue", "list").stdout
    assert "tempfail@c.test" in listing and "permfail@c.test" not in listing and "ok@c.test" not in listing
    assert len(files(c.data)) == 1  # ok@ was not sent twice by the retries
