"""RFC 3464 DSNs as the stdlib email parser reads them: structure, fields, RET, NOTIFY."""

import email
import email.policy

from courrier.delivery.bounce import DSNEntry, build_dsn, should_report, wants
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import NULL, parse_address

ORIGINAL = b"From: a@a.test\r\nTo: b@b.test\r\nSubject: Hello\r\n\r\nthe body\r\n"


def make(ret=None, envid=None, action="failed", sender="a@a.test"):
    r = Recipient(parse_address("b@b.test"), orcpt="rfc822;B@b.test")
    env = Envelope(queue_id="Q", mail_from=parse_address(sender) if sender else NULL, rcpts=[r], received_at=0.0,
                   ret=ret, envid=envid)
    entry = DSNEntry(r, action, "5.1.1" if action == "failed" else "4.4.1", "550 5.1.1 No such user", "mx.b.test")
    raw = build_dsn(hostname="mx.a.test", env=env, message=ORIGINAL, entries=[entry], now=100.0, lifetime=3600)
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_failure_report_structure():
    m = make(envid="E-1")
    assert m.get_content_type() == "multipart/report" and m.get_param("report-type") == "delivery-status"
    assert m["To"].addresses[0].addr_spec == "a@a.test" and "MAILER-DAEMON@mx.a.test" in m["From"]
    text, status, original = m.get_payload()
    assert "could not be delivered" in text.get_content() and "Original subject: Hello" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_msg, per_rcpt = status.get_payload()
    assert per_msg["Reporting-MTA"] == "dns; mx.a.test" and per_msg["Original-Envelope-Id"] == "E-1"
    assert per_rcpt["Final-Recipient"] == "rfc822; b@b.test"
    assert per_rcpt["Original-Recipient"] == "rfc822;B@b.test"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert original.get_content_type() == "message/rfc822"  # no RET: failures return the whole message
    assert original.get_payload()[0]["Subject"] == "Hello"


def test_ret_hdrs_and_delay_notice():
    m = make(ret="HDRS")
    assert m.get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert "the body" not in m.get_payload()[2].as_string()
    d = make(action="delayed")
    assert "Delayed" in d["Subject"]
    per_rcpt = d.get_payload()[1].get_payload()[1]
    assert per_rcpt["Action"] == "delayed" and per_rcpt["Will-Retry-Until"]
    assert d.get_payload()[2].get_content_type() == "text/rfc822-headers"  # delay: headers only by default


def test_notify_and_null_sender():
    r = Recipient(parse_address("x@y"))
    assert wants(r, "FAILURE") and wants(r, "DELAY") and not wants(r, "SUCCESS")
    assert not wants(Recipient(parse_address("x@y"), notify=("NEVER",)), "FAILURE")
    assert wants(Recipient(parse_address("x@y"), notify=("SUCCESS",)), "SUCCESS")
    assert not wants(Recipient(parse_address("x@y"), notify=("SUCCESS",)), "FAILURE")
    env = Envelope(queue_id="Q", mail_from=NULL, rcpts=[r], received_at=0)
    assert not should_report(env)  # never a bounce to <>
