"""Scenario 70: the seed's forgery story, end to end behind the fake DNS.

a.test publishes SPF (127.0.0.1 only), a DKIM key made by ``courrier dkim keygen`` and DMARC p=reject. Mail that
alice@a.test submits on a.test's courrier is DKIM-signed, relayed to b.test's MX and arrives with spf, dkim and dmarc
all ``pass``. The same kind of message sent straight to b.test's MX from another address (127.0.0.2) with
``From: ceo@a.test`` is refused with 550 5.7.1, and ``courrier check`` calls it forged (exit 3) — and the genuine one
authentic (exit 0).
"""

from __future__ import annotations

import re
import smtplib

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import inbox, make_sender, point_mx, submit, wait_for
from tests.support import run_cli

FORGED = (b"From: The CEO <ceo@a.test>\r\nTo: bob@b.test\r\nSubject: urgent wire transfer\r\n"
          b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <forged-1@a.test>\r\n\r\n"
          b"Pay the invoice today, and keep this between us.\r\n")


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def published_record(keygen_output: str) -> tuple[str, str]:
    """(name, TXT text) from the zone-file line ``courrier dkim keygen`` prints."""
    line = next(x for x in keygen_output.splitlines() if "._domainkey." in x)
    name = line.split()[0].rstrip(".")
    return name, "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', line))


def receiver(server_factory, dns, **auth):
    b = server_factory("b", listeners=("smtp",), domains=("b.test",), hostname="mx.b.test",
                       sections={"auth": {"checks": True, **auth}, "delivery": {"nameservers": [dns.address]}})
    b.add_user("bob@b.test")
    return b.start()


def test_genuine_mail_passes_and_the_forgery_is_rejected(server_factory, dns, tmp_path):
    b = receiver(server_factory, dns)
    point_mx(dns, "b.test")
    a = make_sender(server_factory, dns, b.ports["smtp"])
    name, record = published_record(a.cli("dkim", "keygen", "a.test", "--selector", "s1").stdout)
    assert name == "s1._domainkey.a.test" and record.startswith("v=DKIM1; k=rsa; p=")
    dns.update({
        "a.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        name: {"TXT": [record]},
        "_dmarc.a.test": {"TXT": ["v=DMARC1; p=reject; rua=mailto:postmaster@a.test"]},
    })
    a.start()

    # 1. genuine: submitted on a.test, signed, relayed by MX lookup, checked on b.test
    assert submit(a, "alice@a.test", ["bob@b.test"], "lunch?") == {}
    [m] = wait_for(lambda: inbox(b, "bob@b.test"), what="delivery on b.test")
    [ar] = m.get_all("Authentication-Results")
    assert ar.startswith("mx.b.test;")
    assert "spf=pass" in ar and "smtp.mailfrom=alice@a.test" in ar
    assert "dkim=pass" in ar and "header.d=a.test header.s=s1" in ar
    assert "dmarc=pass" in ar and "header.from=a.test" in ar
    [raw] = [m.data for m in b.stored("bob@b.test")]
    stored = tmp_path / "stored.eml"  # the message as stored, for `courrier check`
    stored.write_bytes(raw)
    assert b"\r\n" not in raw and raw.count(b"Authentication-Results:") == 1

    ok = run_cli("check", str(stored), "--client-ip", "127.0.0.1", "--helo", "mx.a.test", "--nameserver",
                 dns.address, "--config", str(b.config), check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Verdict: AUTHENTIC" in ok.stdout and "<alice@a.test>" in ok.stdout  # MAIL FROM from Return-Path

    # 2. forged: straight to b.test's MX from another address, claiming to be the CEO of a.test
    with smtplib.SMTP("127.0.0.1", b.ports["smtp"], source_address=("127.0.0.2", 0), timeout=30) as c:
        c.ehlo("evil.test")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            c.sendmail("ceo@a.test", ["bob@b.test"], FORGED)
    assert refused.value.smtp_code == 550 and refused.value.smtp_error.startswith(b"5.7.1")
    assert b"DMARC" in refused.value.smtp_error
    assert len(inbox(b, "bob@b.test")) == 1  # nothing more was delivered

    eml = tmp_path / "forged.eml"
    eml.write_bytes(FORGED)
    bad = run_cli("check", str(eml), "--client-ip", "127.0.0.2", "--helo", "evil.test", "--mail-from",
                  "ceo@a.test", "--nameserver", dns.address, check=False)
    assert bad.returncode == 3, bad.stdout + bad.stderr
    out = bad.stdout
    assert "Verdict: FORGED" in out and "p=reject" in out
    assert re.search(r"MAIL FROM ceo@a.test\s+fail", out) and "no DKIM-Signature" in out
    assert "a.test TXT: \"v=spf1 ip4:127.0.0.1 -all\"" in out  # the DNS record it used
