"""Release's recipient checks and the released copy (web/relay.py); the wire is tests/e2e/test_66w_release_checks.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courrier.web.relay import RecipientError, check_recipients, release_copy


def test_recipients_bare_or_named_deduplicated():
    assert check_recipients(["Bob <bob@x.org>", "bob@x.org", "BOB@x.org", '"a b"@c.org'], max_recipients=5) == [
        "bob@x.org", '"a b"@c.org']


@pytest.mark.parametrize("bad, why", [
    ("a@[192.0.2.1]", "IP-literal"), ("a@[IPv6:2001:db8::1]", "IP-literal"), ("<@a.test:u@b.test>", "source route"),
    ("@a.test,@b.test:u@c.test", "source route"), ("a@b.test, c@d.test", "invalid"), ("x", "invalid"),
    ("Bob <a@b.test> junk", "invalid"), ("a@b.test\r\nRCPT TO:<x@y>", "invalid"), ("", "invalid"), (5, "array")])
def test_refused_recipients(bad, why):
    with pytest.raises(RecipientError, match=why):
        check_recipients(["ok@b.test", bad], max_recipients=5)


def test_limits_and_release_allowed():
    with pytest.raises(RecipientError, match="no valid To"):
        check_recipients([], max_recipients=5)
    with pytest.raises(RecipientError, match="max_recipients"):
        check_recipients([f"u{i}@b.test" for i in range(3)], max_recipients=2)
    assert check_recipients(["a@ok.test"], max_recipients=2, allowed=r"@ok\.test$") == ["a@ok.test"]
    with pytest.raises(RecipientError, match="release_allowed"):  # matched against the bare address
        check_recipients(["a@ok.test", "Name @ok.test <b@no.test>"], max_recipients=2, allowed=r"@ok\.test$")


def test_release_copy_drops_bcc_and_renews_date():
    raw = (b"From: a@b\r\nBcc: x@y,\r\n z@w\r\nTo: t@u\r\nBCC : obs@x\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\n"
           b"Subject: s\r\n\r\nBcc: in the body\r\n")
    out = release_copy(raw, datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    assert out == (b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nFrom: a@b\r\nTo: t@u\r\nSubject: s\r\n\r\n"
                   b"Bcc: in the body\r\n")
    assert release_copy(b"Subject: x\n\nbody\n", datetime(2026, 3, 2, tzinfo=UTC)).startswith(b"Date: Mon, 02 Mar")
