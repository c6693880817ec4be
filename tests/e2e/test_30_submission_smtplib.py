"""Scenario 30: a mail client (smtplib) submits through the MSA: STARTTLS, AUTH, implicit TLS, the RFC 6409 rules."""

import email
import email.policy
import smtplib
import ssl

import pytest

from tests.e2e.msa_support import PASSWORDS, insecure_context, messages, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"
MSG = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: lunch?\r\n\r\nat noon\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa30"), sections={"submission": {"sent_copy": True}})
    yield s
    s.stop()


def submit(server) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10)
    c.ehlo("client.test")
    c.starttls(context=insecure_context())
    c.ehlo("client.test")
    return c


def test_starttls_login_and_send(server):
    before = len(messages(server, ALICE))
    with submit(server) as c:
        assert c.has_extn("auth") and "PLAIN" in c.esmtp_features["auth"] and "LOGIN" in c.esmtp_features["auth"]
        code, _ = c.login(BOB, PASSWORDS[BOB])
        assert code == 235
        assert c.sendmail(BOB, [ALICE], MSG) == {}
    got = messages(server, ALICE)
    assert len(got) == before + 1  # a 250 means it is already in the Maildir
    m = email.message_from_bytes(got[-1], policy=email.policy.default)
    assert m["Subject"] == "lunch?" and m["Return-Path"] == f"<{BOB}>"
    received = m["Received"]
    assert "(authenticated sender: bob@example.test)" in received and "with ESMTPSA" in received
    assert "using TLSv1.3" in received or "using TLSv1.2" in received
    assert m["Message-ID"].endswith("@mx.example.test>") and m["Date"]  # RFC 6409 §8.3: added when missing


def test_sent_copy_in_senders_sent_folder(server, server_store):
    with submit(server) as c:
        c.login(BOB, PASSWORDS[BOB])
        c.sendmail(BOB, [ALICE], MSG.replace(b"lunch?", b"sent copy"))
    sent = [email.message_from_bytes(b) for b in messages(server, BOB, "Sent")]
    assert any(m["Subject"] == "sent copy" for m in sent)
    if server_store == "local":
        assert (server.maildir(BOB) / "cur").is_dir()  # the Maildir++ root exists for mutt and Dovecot


def test_auth_login_mechanism(server):
    with submit(server) as c:
        c.user, c.password = BOB, PASSWORDS[BOB]
        code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        assert code == 235


def test_auth_before_tls_is_refused_off_loopback(server):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls") and not c.has_extn("auth")
        assert c.docmd("AUTH", "PLAIN AGJvYkBleGFtcGxlLnRlc3QAYm9iLXNlY3JldA==")[:2] == (
            538, b"5.7.11 Encryption required for requested authentication mechanism")
        code, text = c.docmd("MAIL", f"FROM:<{BOB}>")
        assert (code, text[:5]) == (530, b"5.7.0")


def test_mail_before_auth_is_530_over_tls_too(server):
    with submit(server) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail(BOB, [ALICE], MSG)
        assert e.value.smtp_code == 530 and e.value.smtp_error.startswith(b"5.7.0")


def test_wrong_password_is_535_5_7_8(server):
    with submit(server) as c:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login(BOB, "not-the-password")
        assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8")


def test_implicit_tls_port(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], timeout=10, context=insecure_context()) as c:
        c.ehlo("client.test")
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert not c.has_extn("starttls")  # already encrypted
        assert c.has_extn("auth")
        c.login(ALICE, PASSWORDS[ALICE])
        assert c.sendmail(ALICE, [BOB], b"From: alice@example.test\r\nSubject: over 465\r\n\r\nhi\r\n") == {}
    assert any(b"Subject: over 465" in m for m in messages(server, BOB))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_implicit_tls_port_refuses_tls_1_1(server):
    """This client can speak TLS 1.1 (SECLEVEL=0); the server must not (RFC 8996)."""
    ctx = insecure_context()
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionError)):
        smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], timeout=10, context=ctx)


def test_message_without_from_is_550_5_6_0(server):
    with submit(server) as c:
        c.login(BOB, PASSWORDS[BOB])
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(BOB, [ALICE], b"To: alice@example.test\r\nSubject: anonymous\r\n\r\nx\r\n")
        assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.6.0")
        assert b"From" in e.value.smtp_error
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(BOB, [ALICE], b"From: Bob <bob@>\r\n\r\nx\r\n")
        assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.6.0")
