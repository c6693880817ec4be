"""Scenario 71: what b.test's MX does with each DMARC outcome, seen in the Maildir as mutt or Dovecot would.

p=quarantine failures go to the Junk folder; p=none is monitor only; genuine unsigned mail passes by SPF alone
(``dkim=none``, never ``fail``); an incoming Authentication-Results claiming our authserv-id is removed, other hosts'
are kept (RFC 8601 §5); with ``dmarc_reject = false`` a p=reject failure is kept, in Junk, instead of refused.
"""

from __future__ import annotations

import email
import email.policy
import smtplib

import pytest

from tests.dnsfake import FakeDNS

MSG = ("From: Alice <alice@{dom}>\r\nTo: bob@b.test\r\nSubject: {subject}\r\n"
       "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@{dom}>\r\n{extra}\r\nhello\r\n")


@pytest.fixture
def dns():
    with FakeDNS() as d:
        d.update({
            "q.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, "_dmarc.q.test": {"TXT": ["v=DMARC1; p=quarantine"]},
            "n.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, "_dmarc.n.test": {"TXT": ["v=DMARC1; p=none"]},
            "r.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, "_dmarc.r.test": {"TXT": ["v=DMARC1; p=reject"]},
        })
        yield d


def mx(server_factory, dns, name="b", **auth):
    b = server_factory(name, listeners=("smtp",), domains=("b.test",), hostname="mx.b.test",
                       sections={"auth": {"checks": True, **auth}, "delivery": {"nameservers": [dns.address]}})
    b.add_user("bob@b.test")
    return b.start()


def send(b, source_ip: str, dom: str, subject: str, extra: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", b.ports["smtp"], source_address=(source_ip, 0), timeout=30) as c:
        c.ehlo("client.test")
        c.sendmail(f"alice@{dom}", ["bob@b.test"], MSG.format(dom=dom, subject=subject, extra=extra).encode())


def folder(b, name: str | None) -> dict[str, email.message.EmailMessage]:
    out = {}
    for f in b.stored("bob@b.test", name or "INBOX"):  # the Maildir (++ folder) or PostgreSQL's rows
        m = email.message_from_bytes(f.data, policy=email.policy.default)
        out[str(m["Subject"])] = m
    return out


def test_policies_on_the_mx(server_factory, dns):
    b = mx(server_factory, dns)
    send(b, "127.0.0.3", "q.test", "quarantined")
    send(b, "127.0.0.3", "n.test", "monitored",
         extra="Authentication-Results: mx.b.test; dmarc=pass header.from=n.test\r\n"
               "Authentication-Results: relay.n.test;\r\n\tspf=pass smtp.mailfrom=alice@n.test\r\n")
    send(b, "127.0.0.1", "r.test", "genuine")

    junk, inbox = folder(b, "Junk"), folder(b, None)
    assert set(junk) == {"quarantined"} and set(inbox) == {"monitored", "genuine"}
    assert "dmarc=fail" in junk["quarantined"]["Authentication-Results"]

    monitored = inbox["monitored"].get_all("Authentication-Results")
    assert len(monitored) == 2  # ours (fail), and relay.n.test's; the forged "mx.b.test; dmarc=pass" is gone
    assert monitored[0].startswith("mx.b.test;") and "dmarc=fail" in monitored[0] and "p=none" in monitored[0]
    assert monitored[1].startswith("relay.n.test;")

    [genuine] = inbox["genuine"].get_all("Authentication-Results")
    assert "spf=pass" in genuine and "dkim=none" in genuine and "dmarc=pass" in genuine


def test_reject_policy_kept_in_junk_when_rejecting_is_off(server_factory, dns):
    b = mx(server_factory, dns, name="b2", dmarc_reject=False)
    send(b, "127.0.0.3", "r.test", "would-be-rejected")
    assert set(folder(b, "Junk")) == {"would-be-rejected"}
    b.wait_log("auth.checked")
    b.wait_log("action=junk")
