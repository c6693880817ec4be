"""Scenario 72: the operator's side — keys made while the server runs, picked up on SIGHUP, and the records to publish.

``courrier dkim keygen`` writes a key; SIGHUP makes the running server sign with it (verified with dkimpy's own
Python API against the fake DNS); ``courrier dns`` prints the MX, A, SPF, DKIM and DMARC records; ``courrier check``
says "unverifiable" (exit 4) when the From domain publishes no DMARC record, and exit 1 for an unreadable file.
"""

from __future__ import annotations

import json
import re
import signal

import dkim as dkimpy
import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import inbox, make_receiver, make_sender, point_mx, submit, wait_for
from tests.e2e.test_70_forgery_defence import published_record
from tests.mailauth.dkimpy_dns import dnsfunc_for
from tests.support import run_cli


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


def test_key_made_while_running_is_used_after_sighup(server_factory, dns):
    b = make_receiver(server_factory).start()
    point_mx(dns, "b.test")
    a = make_sender(server_factory, dns, b.ports["smtp"]).start()
    submit(a, "alice@a.test", ["bob@b.test"], "before the key")
    [first] = wait_for(lambda: inbox(b, "bob@b.test"), what="first delivery")
    assert first["DKIM-Signature"] is None

    out = a.cli("dkim", "keygen", "a.test", "--selector", "late", "--type", "ed25519").stdout
    name, record = published_record(out)
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    dns.set(name, {"TXT": [record]})
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "keys=a.test:late" in a.log(), what="keys reloaded")

    submit(a, "alice@a.test", ["bob@b.test"], "after the key")
    msgs = wait_for(lambda: [m for m in inbox(b, "bob@b.test") if m["Subject"] == "after the key"],
                    what="signed delivery")
    sig = msgs[0]["DKIM-Signature"]
    assert "d=a.test" in sig and "s=late" in sig and "a=ed25519-sha256" in sig
    [raw] = [m.data for m in b.stored("bob@b.test") if b"after the key" in m.data]
    assert dkimpy.verify(raw, dnsfunc=dnsfunc_for(dns.port))


def test_dns_records_and_check_exit_codes(server_factory, dns, tmp_path):
    s = server_factory("ops", domains=("a.test",), hostname="mx.a.test")
    s.cli("dkim", "keygen", "a.test", "--selector", "s1")
    again = s.cli("dkim", "keygen", "a.test", "--selector", "s1", check=False)
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr

    out = s.cli("dns", "a.test", "--ip", "192.0.2.25", "--dmarc-policy", "reject").stdout
    zone = out.split("Zone-file lines:", 1)[1]
    assert re.search(r"^a\.test\.\s+3600\s+IN\s+MX\s+10 mx\.a\.test\.$", zone, re.M)
    assert re.search(r"^mx\.a\.test\.\s+3600\s+IN\s+A\s+192\.0\.2\.25$", zone, re.M)
    assert re.search(r'^a\.test\.\s+3600\s+IN\s+TXT\s+"v=spf1 mx -all"$', zone, re.M)
    assert re.search(r"^s1\._domainkey\.a\.test\.\s+3600\s+IN\s+TXT\s+\( \"v=DKIM1; k=rsa; p=", zone, re.M)
    assert re.search(r'^_dmarc\.a\.test\.\s+3600\s+IN\s+TXT\s+"v=DMARC1; p=reject; ', zone, re.M)

    eml = tmp_path / "plain.eml"
    eml.write_bytes(b"From: someone@nodmarc.test\r\nSubject: hi\r\n\r\nhello\r\n")
    dns.set("nodmarc.test", {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]})
    p = s.cli("check", str(eml), "--client-ip", "127.0.0.1", "--mail-from", "someone@nodmarc.test",
              "--nameserver", dns.address, "--json", check=False)
    assert p.returncode == 4, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert report["verdict"] == "unverifiable" and report["spf"]["result"] == "pass"
    assert report["dmarc"]["result"] == "none" and report["dkim"] == []

    missing = run_cli("check", str(tmp_path / "nope.eml"), check=False)
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    bad_ip = run_cli("check", str(eml), "--client-ip", "not-an-ip", check=False)
    assert bad_ip.returncode == 2
