"""Scenario 49: a silent nameserver costs a message one `[auth] check_timeout`, not a timeout per lookup.

The MX asks a UDP socket that reads every question and never answers. With ``check_timeout = "1s"`` the end of DATA
is answered 250 within about 1.5 s (asserted < 2.5 s on a loaded machine; it took 11 s before), the stored
message's Authentication-Results says ``temperror``, and one ``auth.timeout`` log line names the lookup that hung.
"""

from __future__ import annotations

import smtplib
import time

from tests.e2e.mta_helpers import inbox, wait_for
from tests.mailauth.silentdns import SilentDNS

MESSAGE = (b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: through a dead resolver\r\n"
           b"Message-ID: <budget-1@a.test>\r\n\r\nhello\r\n")


def test_silent_nameserver_ends_with_the_budget(server_factory):
    with SilentDNS() as ns:
        b = server_factory("b", listeners=("smtp",), domains=("b.test",), hostname="mx.b.test",
                           sections={"auth": {"checks": True, "check_timeout": "1s"},
                                     "delivery": {"nameservers": [ns.address]}})
        b.add_user("bob@b.test")
        b.start()
        with smtplib.SMTP("127.0.0.1", b.ports["smtp"], timeout=30) as c:
            c.ehlo("mx.a.test")
            assert c.mail("alice@a.test")[0] == 250
            assert c.rcpt("bob@b.test")[0] == 250
            t0 = time.monotonic()
            code, text = c.data(MESSAGE)
            elapsed = time.monotonic() - t0
        assert code == 250, text
        # one budget (1 s) plus the loaded machine's scheduling; without the budget it took 11 s
        assert elapsed < 2.5, f"end of DATA answered after {elapsed:.2f} s"
        assert ns.questions >= 1  # the nameserver was really asked

    [m] = wait_for(lambda: inbox(b, "bob@b.test"), what="the stored copy")
    ar = str(m["Authentication-Results"])
    assert "spf=temperror" in ar and "dmarc=temperror" in ar and "dkim=none" in ar, ar
    line = wait_for(lambda: next((x for x in b.log().splitlines() if " auth.timeout " in x), None),
                    what="the auth.timeout log line")
    assert 'lookup="TXT mx.a.test"' in line and "qid=" in line and "budget=1s" in line, line
