"""Scenario 45: a smarthost with AUTH instead of MX lookups (b's submission port, which refuses MAIL without AUTH),
wrong credentials deferring rather than bouncing; ``courrier queue list|show|retry|delete|flush`` on a running and
a stopped server; ``courrier mx`` printing the plan with its fallbacks and exit codes."""

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, inbox, make_receiver, make_sender, point_mx, submit, wait_for
from tests.support import run_cli


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_smarthost_with_auth(server_factory):
    b = server_factory("b", listeners=("smtp", "submission"), domains=("b.test",), hostname="mx.b.test")
    b.add_user("bob@b.test")
    b.add_user("relay@b.test", "relaypw", "--send-as-any")
    b.start()
    a = server_factory("a", listeners=("submission",), domains=("a.test",), hostname="mx.a.test", sections={
        "delivery": {"smarthost": f"127.0.0.1:{b.ports['submission']}", "smarthost_user": "relay@b.test",
                     "smarthost_password": "relaypw", **FAST}})
    a.add_user("alice@a.test")
    a.start()
    submit(a, "alice@a.test", ["bob@b.test"], "via the smarthost")
    m = wait_for(lambda: inbox(b, "bob@b.test"), what="delivery through the smarthost")[0]
    assert "authenticated sender: relay@b.test" in m["Received"]

    # wrong password: our configuration's fault, not the sender's — deferred (4.7.8), never bounced
    a.stop()
    text = a.config.read_text().replace('smarthost_password = "relaypw"', 'smarthost_password = "wrong"')
    a.config.write_text(text)
    a.start()
    submit(a, "alice@a.test", ["bob@b.test"], "bad credentials")
    wait_for(lambda: "4.7.8" in a.cli("queue", "list").stdout, what="a deferral for AUTH")
    assert not inbox(a, "alice@a.test")  # no bounce


def test_queue_commands_running_and_stopped(server_factory, dns):
    b = make_receiver(server_factory)  # down for now
    point_mx(dns, "b.test")
    a = make_sender(server_factory, dns, b.ports["smtp"], retry_first="1h", retry_max="1h").start()
    submit(a, "alice@a.test", ["bob@b.test"], "first")
    submit(a, "alice@a.test", ["bob@b.test"], "second")
    wait_for(lambda: a.cli("queue", "list").stdout.count("attempts=1") == 2, what="two deferred messages")
    lines = a.cli("queue", "list").stdout.splitlines()
    assert len(lines) == 2
    q1, q2 = (line.split()[0] for line in lines)
    for line in lines:
        fields = line.split("  ")
        assert fields[1] == "<alice@a.test>" and fields[2] == "bob@b.test" and fields[3] == "attempts=1"
        assert fields[4].startswith("next=") and ("(in 60m)" in fields[4] or "(in 59m)" in fields[4])
        assert fields[5].startswith("last_error=451 4.4.1 connect to mx.b.test[127.0.0.1]")
    show = a.cli("queue", "show", q1).stdout
    assert "pending  bob@b.test" in show and "deferred bob@b.test  via mx.b.test [127.0.0.1:" in show

    b.start()
    a.cli("queue", "retry", q1)  # the running server takes it within a second
    wait_for(lambda: [str(m["Subject"]) for m in inbox(b, "bob@b.test")] == ["first"], what="retried message")
    assert q1 not in a.cli("queue", "list").stdout
    assert "no longer queued" in a.cli("queue", "show", q1).stdout  # the delivery log outlives the message

    a.stop()  # stopped server: the same commands work on its files
    assert q2 in a.cli("queue", "list").stdout
    p = a.cli("queue", "delete", "NOSUCHID", check=False)
    assert p.returncode == 1 and p.stderr.startswith("courrier: no message NOSUCHID")
    assert "1 message will be retried now" in a.cli("queue", "flush").stdout
    a.start()
    wait_for(lambda: len(inbox(b, "bob@b.test")) == 2, what="flushed message delivered after restart")
    submit(a, "alice@a.test", ["bob@b.test"], "third")  # delivered at once, b is up
    wait_for(lambda: len(inbox(b, "bob@b.test")) == 3, what="third message")


def test_mx_command(dns):
    dns.update({
        "b.test": {"MX": [(20, "mx2.b.test"), (10, "mx1.b.test")]},
        "mx1.b.test": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
        "mx2.b.test": {"A": ["192.0.2.2"]},
        "implicit.test": {"A": ["192.0.2.9"]},
        "null.test": {"MX": [(0, ".")]},
    })
    ns = ["--nameserver", dns.address]
    p = run_cli("mx", "b.test", *ns)
    lines = p.stdout.splitlines()
    assert any("10  mx1.b.test" in x and "192.0.2.1 2001:db8::1" in x for x in lines)
    assert "delivery plan: try mx1.b.test [192.0.2.1]:25, then mx1.b.test [2001:db8::1]:25, " \
           "then mx2.b.test [192.0.2.2]:25" in p.stdout
    p = run_cli("mx", "implicit.test", *ns)
    assert "implicit MX" in p.stdout and "implicit.test [192.0.2.9]:25" in p.stdout
    p = run_cli("mx", "null.test", *ns, check=False)
    assert p.returncode == 3 and "null MX" in p.stdout
    p = run_cli("mx", "nowhere.test", *ns, check=False)
    assert p.returncode == 1 and "NXDOMAIN" in p.stderr and "Traceback" not in p.stderr
