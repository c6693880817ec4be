"""Scenario 47: malformed mail reaches the MX with mail checks on (the default) and is judged, never answered 451.

The audit's three header lines — ``Subject : x`` (space before the colon), a line without a colon, an 8-bit field
name — used to make dkimpy raise at end of DATA. Now: 250, with an Authentication-Results header where DKIM is
``none`` (unsigned) or ``permerror`` (a signature over a header block that cannot be parsed), and SPF and DMARC are
judged as for any message. Sent with smtplib and with swaks, behind the fake DNS.
"""

from __future__ import annotations

import smtplib
import subprocess

import pytest

from courrier.mailauth import dkim
from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import wait_for
from tests.support import Server

MALFORMED = {
    "space before colon": b"Subject : x\r\n",
    "colon-less line": b"this line has no colon\r\n",
    "8-bit field name": b"Sub\xe9ject: x\r\n",
}


@pytest.fixture(scope="module")
def mx(tmp_path_factory, server_store):
    with FakeDNS() as dns:
        key = dkim.signing_key("a.test", "s1", dkim.generate_pem("ed25519"))
        dns.update({"a.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}, key.record_name: {"TXT": [key.record]},
                    "_dmarc.a.test": {"TXT": ["v=DMARC1; p=none"]}})
        b = Server(tmp_path_factory.mktemp("mx47"), listeners=("smtp",), domains=("b.test",), hostname="mx.b.test",
                   sections={"auth": {"checks": True}, "delivery": {"nameservers": [dns.address]}})
        b.add_user("bob@b.test")
        with b:
            yield b, key


def stored(b, subject_marker: bytes) -> bytes:
    return next((m.data for m in b.stored("bob@b.test") if b"<" + subject_marker + b"@" in m.data), b"")


def authres(raw: bytes) -> str:
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    assert head.count("Authentication-Results:") == 1
    return head.split("Authentication-Results:", 1)[1].split("\nReturn-Path", 1)[0]


@pytest.mark.parametrize("case", list(MALFORMED))
def test_unsigned_malformed_mail_is_accepted_with_dkim_none(mx, case):
    b, _ = mx
    marker = f"unsigned-{case}".replace(" ", "-").encode()
    msg = (b"From: alice@a.test\r\nTo: bob@b.test\r\n" + MALFORMED[case] + b"Message-ID: <" + marker +
           b"@a.test>\r\n\r\nhello\r\n")
    with smtplib.SMTP("127.0.0.1", b.ports["smtp"], timeout=30) as c:
        c.ehlo("mx.a.test")
        code, text = c.docmd("MAIL FROM:<alice@a.test>")
        assert code == 250
        assert c.docmd("RCPT TO:<bob@b.test>")[0] == 250
        code, text = c.data(msg)
    assert code == 250, text  # was 451: dkimpy's MessageFormatError escaped
    ar = authres(wait_for(lambda: stored(b, marker), what="the stored copy"))
    assert "spf=pass" in ar and "dkim=none" in ar and "dmarc=pass" in ar, ar  # aligned SPF pass


@pytest.mark.parametrize("case", list(MALFORMED))
def test_signed_malformed_mail_is_dkim_permerror(mx, case):
    b, key = mx
    marker = f"signed-{case}".replace(" ", "-").encode()
    clean = b"From: alice@a.test\r\nTo: bob@b.test\r\nMessage-ID: <" + marker + b"@a.test>\r\n\r\nhello\r\n"
    signature = dkim.Signer({"a.test": key}).header(clean)
    msg = signature + MALFORMED[case] + clean
    with smtplib.SMTP("127.0.0.1", b.ports["smtp"], timeout=30) as c:
        c.ehlo("mx.a.test")
        refused = c.sendmail("alice@a.test", ["bob@b.test"], msg)
    assert refused == {}
    ar = authres(wait_for(lambda: stored(b, marker), what="the stored copy"))
    assert "dkim=permerror" in ar and "header.d=a.test" in ar and "spf=pass" in ar and "dmarc=pass" in ar, ar


def test_swaks_colon_less_header_line(mx, tmp_path):
    b, _ = mx
    eml = tmp_path / "m.eml"
    eml.write_bytes(b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: by swaks\r\nno colon here either\r\n"
                    b"Message-ID: <swaks-colonless@a.test>\r\n\r\nhello\r\n")
    p = subprocess.run(["swaks", "--server", f"127.0.0.1:{b.ports['smtp']}", "--helo", "mx.a.test",
                        "--from", "alice@a.test", "--to", "bob@b.test", "--data", f"@{eml}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<-  250" in p.stdout.split("~> .")[-1]
    ar = authres(wait_for(lambda: stored(b, b"swaks-colonless"), what="the stored copy"))
    assert "dkim=none" in ar and "spf=pass" in ar
    assert "Traceback" not in b.log()
