"""Scenario 42: DSNs (RFC 3464) in the sender's mailbox — b.test answering 550, a null MX (RFC 7505), a delay
notice, DSN parameters (RET, ENVID, NOTIFY, ORCPT) honoured, a mail loop stopped, and never a bounce to <>."""

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import inbox, make_receiver, make_sender, point_mx, submit, wait_for
from tests.support import Server, run_cli


@pytest.fixture(scope="module")
def pair(tmp_path_factory, server_store):
    with FakeDNS() as dns:
        base = tmp_path_factory.mktemp("bounces")
        made = []

        def factory(name, **kw):
            (base / name).mkdir()
            s = Server(base / name, **kw)
            made.append(s)
            return s

        b = make_receiver(factory).start()
        point_mx(dns, "b.test")
        dns.set("null.test", {"MX": [(0, ".")]})
        dns.set("slow.test", {"MX": [(10, "mx.slow.test")]})
        dns.set("mx.slow.test", {"A": ["127.0.0.2"]})  # refuses connections: the message waits
        a = make_sender(factory, dns, b.ports["smtp"], users=("alice", "carol", "dave", "erin", "frank", "gina"),
                        delay_notice="1s").start()
        try:
            yield a, b
        finally:
            for s in made:
                s.stop()


def attempts(a):
    return max([int(w.split("=")[1]) for w in a.cli("queue", "list").stdout.split() if w.startswith("attempts=")]
               or [0])


def dsns(a, address):
    return [m for m in inbox(a, address) if m.get_content_type() == "multipart/report"]


def report(m):
    """(delivery-status text, returned part content type, returned part text)."""
    parts = list(m.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    status = parts[1].as_string()
    return status, parts[2].get_content_type(), parts[2].as_string()


def test_550_gives_dsn_with_whole_message(pair):
    a, _ = pair
    submit(a, "alice@a.test", ["nobody@b.test"], "to nobody")
    m = wait_for(lambda: dsns(a, "alice@a.test"), what="a DSN for alice")[0]
    assert m["From"].addresses[0].addr_spec == f"MAILER-DAEMON@{'mx.a.test'}"
    assert m["Return-Path"] == "<>"  # sent from the null sender (RFC 3464 §2, RFC 5321 §4.5.5)
    assert m["Auto-Submitted"] == "auto-replied"
    status, kind, returned = report(m)
    assert "Reporting-MTA: dns; mx.a.test" in status
    assert "Final-Recipient: rfc822; nobody@b.test" in status
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "Remote-MTA: dns; mx.b.test" in status and "Diagnostic-Code: smtp; 550 5.1.1" in status
    assert kind == "message/rfc822" and "to nobody" in returned and "hello" in returned


def test_some_recipients_refused(pair):
    a, b = pair
    submit(a, "gina@a.test", ["bob@b.test", "nobody@b.test"], "half and half")
    m = wait_for(lambda: dsns(a, "gina@a.test"), what="a DSN for the refused half")[0]
    status, _, _ = report(m)
    assert "Final-Recipient: rfc822; nobody@b.test" in status and "bob@b.test" not in status
    wait_for(lambda: "half and half" in [str(x["Subject"]) for x in inbox(b, "bob@b.test")], what="bob's copy")


def test_null_mx_bounces_at_once(pair):
    a, _ = pair
    submit(a, "carol@a.test", ["someone@null.test"], "to a domain that takes no mail")
    m = wait_for(lambda: dsns(a, "carol@a.test"), timeout=10, what="a null-MX DSN")[0]
    status, _, _ = report(m)
    assert "Status: 5.1.10" in status and "null MX" in status


def test_dsn_parameters_honoured(pair):
    a, _ = pair
    submit(a, "dave@a.test", ["ghost@b.test", "nobody@b.test"], "with DSN parameters",
           mail_options=("RET=HDRS", "ENVID=env+2Bid-42"),
           rcpt_options=("NOTIFY=FAILURE ORCPT=rfc822;ghost+40b.test",))
    m = wait_for(lambda: dsns(a, "dave@a.test"), what="a DSN for dave")[0]
    status, kind, returned = report(m)
    assert "Original-Envelope-Id: env+id-42" in status
    assert "Original-Recipient: rfc822;ghost@b.test" in status
    assert kind == "text/rfc822-headers" and "with DSN parameters" in returned and "hello" not in returned


def test_notify_never_and_null_sender_get_no_bounce(pair):
    a, _ = pair
    submit(a, "erin@a.test", ["nobody@b.test"], "never tell me", rcpt_options=("NOTIFY=NEVER",))
    # the null sender, through the sendmail drop: the failure must not produce a bounce (no bounce loops)
    p = run_cli("sendmail", "-f", "<>", "-i", "nobody@b.test", "--config", str(a.config),
                input="Subject: from the null sender\n\nbody\n", check=False)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: "nothing queued" in a.cli("queue", "list").stdout, what="queue drained")
    log = a.log()
    assert log.count("delivery.failed") >= 2
    assert not dsns(a, "erin@a.test")
    assert "to=<>" not in log and 'to="<>"' not in log  # no DSN addressed to the null sender


def test_delay_notice_once_then_still_queued(pair):
    a, _ = pair
    submit(a, "frank@a.test", ["someone@slow.test"], "slow road")
    m = wait_for(lambda: dsns(a, "frank@a.test"), what="a delay notice")[0]
    status, kind, _ = report(m)
    assert "Action: delayed" in status and "Status: 4.4.1" in status and "Will-Retry-Until:" in status
    assert kind == "text/rfc822-headers"
    assert "Delayed Mail" in m["Subject"]
    listing = a.cli("queue", "list").stdout
    assert "someone@slow.test" in listing
    qid = listing.split()[0]
    wait_for(lambda: attempts(a) >= 3, what="more retries")
    assert len(dsns(a, "frank@a.test")) == 1  # once only
    a.cli("queue", "delete", qid)
    assert "nothing queued" in a.cli("queue", "list").stdout


def test_mail_loop_is_bounced(pair):
    a, _ = pair
    hops = "".join(f"Received: from hop{i}.test by hop{i + 1}.test; Thu, 1 Jan 2026 00:00:00 +0000\n"
                   for i in range(55))
    p = run_cli("sendmail", "-f", "alice@a.test", "-i", "bob@b.test", "--config", str(a.config),
                input=hops + "Subject: looping\n\nround and round\n", check=False)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: any("5.4.6" in report(m)[0] for m in dsns(a, "alice@a.test")), what="a loop DSN")
