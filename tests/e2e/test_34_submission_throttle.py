"""Scenario 34: password guessing is throttled (``[limits] auth_failures_per_ip``), per client IP and per account,
on both submission ports, and logged without the passwords."""

import smtplib

import pytest

from tests.e2e.msa_support import PASSWORDS, insecure_context, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"
GUESSES = ["hunter2-guess", "letmein-guess", "123456-guess"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa34"), limits={"auth_failures_per_ip": 3})
    yield s
    s.stop()


def session(server, source: str, port: str = "submission") -> smtplib.SMTP:
    if port == "submissions":
        c = smtplib.SMTP_SSL("127.0.0.1", server.ports[port], timeout=10, context=insecure_context(),
                             source_address=(source, 0))
    else:
        c = smtplib.SMTP("127.0.0.1", server.ports[port], timeout=10, source_address=(source, 0))
        c.starttls(context=insecure_context())
    c.ehlo("client.test")
    return c


def try_login(c: smtplib.SMTP, user: str, password: str) -> tuple[int, bytes]:
    """One AUTH PLAIN attempt (smtplib's login() would try every mechanism, counting several failures)."""
    c.user, c.password = user, password
    try:
        return c.auth("PLAIN", c.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code, e.smtp_error


def test_per_ip_then_454_even_with_the_right_password(server):
    with session(server, "127.0.0.1") as c:
        for guess in GUESSES:
            assert try_login(c, "nobody@example.test", guess)[0] == 535
        code, text = try_login(c, BOB, PASSWORDS[BOB])
        assert (code, text[:5]) == (454, b"4.7.0")
    with session(server, "127.0.0.1", "submissions") as c:  # one throttle for both submission ports
        assert try_login(c, BOB, PASSWORDS[BOB])[0] == 454
    with session(server, "127.0.0.2") as c:  # another client is not punished for 127.0.0.1's guesses
        assert try_login(c, BOB, PASSWORDS[BOB])[0] == 235


def test_per_account_across_client_addresses(server):
    for i, guess in enumerate(GUESSES):
        with session(server, f"127.0.0.{10 + i}") as c:
            assert try_login(c, ALICE, guess)[0] == 535
    with session(server, "127.0.0.20") as c:
        assert try_login(c, ALICE, PASSWORDS[ALICE])[0] == 454
        assert try_login(c, BOB, PASSWORDS[BOB])[0] == 235  # other accounts from that address still work


def test_failures_are_logged_without_passwords(server):
    log = server.log()
    assert log.count("smtp.auth_failed") >= 6 and "user=alice@example.test" in log
    assert "smtp.auth_blocked" in log and "smtp.auth_throttled" in log
    for secret in [*GUESSES, *PASSWORDS.values()]:
        assert secret not in log
