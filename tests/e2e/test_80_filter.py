"""Scenario 80: inbound filtering on the MX with a real SpamAssassin spamd and a DNS blocklist.

b.test's MX scores mail with Debian's spamd (on loopback, network tests off) and looks its clients up in the zone
bl.test served by the fake DNS, where 127.0.0.3 is listed. Mail is sent with smtplib from 127.0.0.1 (not listed)
and 127.0.0.3 (listed), and read back over IMAP as bob's mail client would: GTUBE lands in Junk with
X-Spam-Flag/Score/Status, ham in INBOX with its score; a listed client gets 554 5.7.1 naming the zone at RCPT;
with ``reject_score`` GTUBE gets 550 5.7.1 at the end of DATA and nothing is stored; with spamd stopped, mail is
still accepted, unscanned, and the log says so.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib

import pytest

from tests.dnsfake import FakeDNS
from tests.spamd import GTUBE, Spamd

MSG = ("From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: {subject}\r\n"
       "Date: Fri, 05 Dec 2025 08:00:00 +0000\r\nMessage-ID: <{subject}.1234@a.test>\r\n{extra}\r\n{body}\r\n")
HAM = "Hello Bob,\r\n\r\nShall we meet for lunch on Friday at noon? The usual place.\r\n\r\nAlice"


@pytest.fixture(scope="module")
def sa():
    """One real spamd for the scenarios that keep it running."""
    with Spamd() as s:
        yield s


@pytest.fixture
def dns():
    with FakeDNS() as d:
        d.update({
            "a.test": {"TXT": ["v=spf1 ip4:127.0.0.0/8 -all"]},
            "3.0.0.127.bl.test": {"A": ["127.0.0.2"], "TXT": ["Listed in bl.test for testing"]},
        })
        yield d


def mx(server_factory, dns: FakeDNS, spamd_address: str, name: str = "b", **filter_keys):
    b = server_factory(name, listeners=("smtp", "imap"), domains=("b.test",), hostname="mx.b.test",
                       sections={"auth": {"checks": True}, "delivery": {"nameservers": [dns.address]},
                                 "filter": {"spamd": spamd_address, "dnsbl": ["bl.test"], **filter_keys}})
    b.add_user("bob@b.test")
    return b.start()


def send(b, subject: str, body: str, *, source_ip: str = "127.0.0.1", extra: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", b.ports["smtp"], source_address=(source_ip, 0), timeout=60) as c:
        c.ehlo("client.a.test")
        c.sendmail("alice@a.test", ["bob@b.test"], MSG.format(subject=subject, body=body, extra=extra).encode())


def mailbox(b, folder: str) -> dict[str, email.message.EmailMessage]:
    """Subject → message, as an IMAP client reads the folder."""
    c = imaplib.IMAP4("127.0.0.1", b.ports["imap"], timeout=30)
    try:
        c.login("bob@b.test", "secret")
        typ, data = c.select(folder, readonly=True)
        assert typ == "OK", data
        typ, data = c.fetch("1:*", "(BODY.PEEK[])") if int(data[0]) else ("OK", [])
        assert typ == "OK", data
        msgs = [email.message_from_bytes(d[1], policy=email.policy.default) for d in data if isinstance(d, tuple)]
        return {str(m["Subject"]): m for m in msgs}
    finally:
        c.logout()


def test_spam_to_junk_ham_to_inbox_listed_client_refused(server_factory, dns, sa: Spamd):
    b = mx(server_factory, dns, sa.address)
    send(b, "gtube", GTUBE, extra="X-Spam-Flag: NO\r\nX-Spam-Status: No, score=-100\r\n")  # forged by the sender
    send(b, "lunch", HAM)

    junk, inbox = mailbox(b, "Junk"), mailbox(b, "INBOX")
    assert set(junk) == {"gtube"} and set(inbox) == {"lunch"}
    spam = junk["gtube"]
    assert spam.get_all("X-Spam-Flag") == ["YES"]  # the sender's "NO" is gone
    assert float(spam["X-Spam-Score"]) >= 1000
    [status] = spam.get_all("X-Spam-Status")
    assert status.startswith("Yes, score=") and "GTUBE" in status.replace(" ", "")
    assert "spf=pass" in spam["Authentication-Results"]  # both verdicts on one message
    ham = inbox["lunch"]
    assert ham["X-Spam-Flag"] is None and float(ham["X-Spam-Score"]) < 5
    assert str(ham["X-Spam-Status"]).startswith("No, score=")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(b, "from-listed", HAM, source_ip="127.0.0.3")
    code, text = e.value.recipients["bob@b.test"]
    assert code == 554 and text.startswith(b"5.7.1 ") and b"bl.test" in text and b"127.0.0.3" in text
    assert "from-listed" not in mailbox(b, "INBOX") and "from-listed" not in mailbox(b, "Junk")
    b.wait_log("dnsbl.listed ip=127.0.0.3 zone=bl.test")
    b.wait_log("filter.verdict filter=spamd")
    b.wait_log("action=junk")


def test_reject_score_refuses_at_end_of_data(server_factory, dns, sa: Spamd):
    b = mx(server_factory, dns, sa.address, name="b2", reject_score=50)
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(b, "gtube", GTUBE)
    assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.7.1 ")
    send(b, "lunch", HAM)
    assert set(mailbox(b, "Junk")) == set() and set(mailbox(b, "INBOX")) == {"lunch"}


def test_spamd_stopped_mail_still_accepted(server_factory, dns):
    with Spamd() as own:
        b = mx(server_factory, dns, own.address, name="b3")
        send(b, "scanned", HAM)
        own.stop()
        send(b, "unscanned", GTUBE)
    inbox = mailbox(b, "INBOX")
    assert set(inbox) == {"scanned", "unscanned"}
    assert inbox["scanned"]["X-Spam-Status"] is not None
    assert inbox["unscanned"]["X-Spam-Status"] is None and inbox["unscanned"]["X-Spam-Flag"] is None
    assert "filter=spamd" in b.wait_log("filter.unavailable")
