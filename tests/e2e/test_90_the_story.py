"""Scenario 90: the whole SMTP story, hop by hop, with clients other people wrote at every end.

    alice's MUA --587 STARTTLS+AUTH--> a.test MSA --> MTA --MX lookup (fake DNS)--> b.test MX --> Maildir
        --IMAP--> bob's MUA; bob replies --> b.test MSA --> MTA --MX lookup--> a.test MX --> Maildir --POP3--> alice

Both instances run with ``trust_loopback = false``, so loopback is treated like any remote client: AUTH only after
STARTTLS, IMAP/POP3 logins only over TLS. a.test signs with DKIM and publishes SPF and DMARC; b.test checks them.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import poplib
import re
import ssl
import subprocess

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, wait_for
from tests.support import run_cli


def _tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed test certificates
    return ctx


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_the_smtp_story_end_to_end(server_factory, dns):
    listeners = ("smtp", "submission", "imap", "imaps", "pop3", "pop3s")
    a = server_factory("a", listeners=listeners, domains=("a.test",), hostname="mx.a.test",
                       top={"trust_loopback": False},
                       sections={"auth": {"checks": True}, "delivery": {"nameservers": [dns.address], **FAST}})
    b = server_factory("b", listeners=listeners, domains=("b.test",), hostname="mx.b.test",
                       top={"trust_loopback": False},
                       sections={"auth": {"checks": True}, "delivery": {"nameservers": [dns.address], **FAST}})
    # each MTA reaches the other's MX port (they share 127.0.0.1, so the port is what tells them apart)
    a.config.write_text(a.config.read_text().replace("[delivery]", f"[delivery]\nmx_port = {b.ports['smtp']}"))
    b.config.write_text(b.config.read_text().replace("[delivery]", f"[delivery]\nmx_port = {a.ports['smtp']}"))
    a.add_user("alice@a.test", "alice-pw")
    b.add_user("bob@b.test", "bob-pw")
    keygen = a.cli("dkim", "keygen", "a.test", "--selector", "s1").stdout
    line = next(x for x in keygen.splitlines() if "._domainkey." in x)
    dns.update({
        "a.test": {"MX": [(10, "mx.a.test")], "TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "mx.a.test": {"A": ["127.0.0.1"]},
        "s1._domainkey.a.test": {"TXT": ["".join(re.findall(r'"((?:[^"\\]|\\.)*)"', line))]},
        "_dmarc.a.test": {"TXT": ["v=DMARC1; p=reject"]},
        "b.test": {"MX": [(10, "mx.b.test")]},
        "mx.b.test": {"A": ["127.0.0.1"]},
    })
    a.start()
    b.start()

    # `dig -t MX`, as the story does it: the plan a.test's MTA will follow
    plan = run_cli("mx", "b.test", "--nameserver", dns.address)
    assert "mx.b.test" in plan.stdout and "127.0.0.1" in plan.stdout

    # 1. alice's MUA submits on 587 with STARTTLS and AUTH (swaks)
    p = subprocess.run(["swaks", "--server", f"127.0.0.1:{a.ports['submission']}", "--tls", "--auth", "PLAIN",
                        "--auth-user", "alice@a.test", "--auth-password", "alice-pw", "--from", "alice@a.test",
                        "--to", "bob@b.test", "--header", "Subject: lunch on Friday?", "--body", "Noon, usual place?"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr

    # 2. a.test's MTA looks up b.test's MX and relays; b.test checks SPF, DKIM, DMARC and stores it
    [stored] = wait_for(lambda: b.stored("bob@b.test"), what="delivery on b.test")
    m = email.message_from_bytes(stored.data, policy=email.policy.default)
    ar = str(m["Authentication-Results"])
    assert ar.startswith("mx.b.test;") and "spf=pass" in ar and "dkim=pass" in ar and "dmarc=pass" in ar
    received = [str(r) for r in m.get_all("Received")]
    assert any("by mx.b.test" in r and "ESMTPS" in r for r in received)  # the relay hop used STARTTLS
    assert any("by mx.a.test" in r and "ESMTPSA" in r for r in received)  # the submission hop: TLS + AUTH

    # 3. bob's MUA reads it over IMAP: plain-text LOGIN refused until STARTTLS
    with imaplib.IMAP4("127.0.0.1", b.ports["imap"]) as imap:
        assert "LOGINDISABLED" in imap.capabilities
        imap.starttls(_tls())
        imap.login("bob@b.test", "bob-pw")
        imap.select("INBOX")
        typ, data = imap.uid("SEARCH", None, "SUBJECT", "lunch")
        [uid] = data[0].split()
        typ, data = imap.uid("FETCH", uid, "(BODY[])")
        assert b"Noon, usual place?" in data[0][1] and b"\r\n" in data[0][1]  # served with CRLF

    # 4. bob replies through his own MSA (implicit-TLS client: courrier send with STARTTLS + AUTH)
    r = run_cli("send", "--server", f"127.0.0.1:{b.ports['submission']}", "--starttls", "--user", "bob@b.test",
                "--password-stdin", "--from", "bob@b.test", "--to", "alice@a.test", "--subject", "Re: lunch on Friday?",
                "--body", "Yes, see you there.", input="bob-pw\n")
    assert r.returncode == 0, r.stdout + r.stderr

    # 5. alice's MUA fetches it over POP3S
    def alice_count():
        pop = poplib.POP3_SSL("127.0.0.1", a.ports["pop3s"], context=_tls(), timeout=10)
        try:
            pop.user("alice@a.test")
            pop.pass_("alice-pw")
            return pop.stat()[0]
        finally:
            pop.quit()

    wait_for(alice_count, what="the reply on a.test")
    pop = poplib.POP3_SSL("127.0.0.1", a.ports["pop3s"], context=_tls(), timeout=10)
    pop.user("alice@a.test")
    pop.pass_("alice-pw")
    lines = pop.retr(1)[1]
    pop.quit()
    reply = email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)
    assert str(reply["Subject"]) == "Re: lunch on Friday?" and reply["From"] == "bob@b.test"
    assert "Yes, see you there." in reply.get_content()
    # the queues are empty on both sides: nothing stuck, nothing bounced
    for srv in (a, b):
        assert srv.cli("queue", "list").stdout.startswith("queue is empty")
