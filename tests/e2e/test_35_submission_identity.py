"""Scenario 35: the sender's identity — forged envelope sender and header From refused with 553 5.7.1; aliases added
with ``courrier user alias add`` (while the server runs) are allowed as senders and receive mail; an account made
with ``--send-as-any`` may send as anyone."""

import smtplib

import pytest

from tests.e2e.msa_support import PASSWORDS, insecure_context, messages, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa35"))
    yield s
    s.stop()


def logged_in(server, user: str, password: str) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10)
    c.starttls(context=insecure_context())
    c.login(user, password)
    return c


def body(from_header: str, subject: str) -> bytes:
    return f"From: {from_header}\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\nx\r\n".encode()


def test_forged_envelope_sender(server):
    with logged_in(server, BOB, PASSWORDS[BOB]) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail(ALICE, [ALICE], body(BOB, "forged envelope"))
        assert e.value.smtp_code == 553 and e.value.smtp_error.startswith(b"5.7.1")


@pytest.mark.parametrize("from_header", [
    "Alice <alice@example.test>",
    '"bob@example.test" <alice@example.test>',  # the display name claims bob; the address is alice's
    "bob@example.test, alice@example.test",
    "ceo@bank.test",
])
def test_forged_header_from(server, from_header):
    with logged_in(server, BOB, PASSWORDS[BOB]) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(BOB, [ALICE], body(from_header, "forged header"))
        assert e.value.smtp_code == 553 and e.value.smtp_error.startswith(b"5.7.1")
    assert not any(b"Subject: forged header" in m for m in messages(server, ALICE))


def test_alias_added_while_running_is_allowed_then_removed(server):
    alias = "bobby@example.test"
    with logged_in(server, BOB, PASSWORDS[BOB]) as c:
        with pytest.raises(smtplib.SMTPSenderRefused):
            c.sendmail(alias, [ALICE], body(alias, "as alias"))
    server.cli("user", "alias", "add", BOB, alias)
    with logged_in(server, BOB, PASSWORDS[BOB]) as c:
        assert c.sendmail(alias, [ALICE], body(f"Bobby <{alias}>", "as alias")) == {}
        assert c.sendmail(BOB, [alias], body(BOB, "to my alias")) == {}  # aliases receive mail too
    assert any(b"Subject: as alias" in m for m in messages(server, ALICE))
    assert any(b"Subject: to my alias" in m for m in messages(server, BOB))
    server.cli("user", "alias", "del", BOB, alias)
    with logged_in(server, BOB, PASSWORDS[BOB]) as c:
        with pytest.raises(smtplib.SMTPSenderRefused):
            c.sendmail(alias, [ALICE], body(alias, "as removed alias"))


def test_send_as_any_account(server):
    server.cli("user", "add", "relay@example.test", "--password-stdin", "--send-as-any", input="relay-pw\n")
    with logged_in(server, "relay@example.test", "relay-pw") as c:
        assert c.sendmail("noreply@shop.test", [ALICE], body("Shop <noreply@shop.test>", "from the app")) == {}
    got = [m for m in messages(server, ALICE) if b"Subject: from the app" in m]
    assert len(got) == 1 and b"Return-Path: <noreply@shop.test>" in got[0]
    assert b"(authenticated sender: relay@example.test)" in got[0]


def test_ordinary_account_cannot_send_as_any(server):
    with logged_in(server, ALICE, PASSWORDS[ALICE]) as c:
        with pytest.raises(smtplib.SMTPSenderRefused):
            c.sendmail("noreply@shop.test", [BOB], body("noreply@shop.test", "not allowed"))
