"""Scenario 32: curl as the sending client: ``smtp://… --ssl-reqd -u`` (STARTTLS + AUTH) and ``smtps://`` (port 465)."""

import subprocess

import pytest

from tests.e2e.msa_support import PASSWORDS, messages, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa32"))
    yield s
    s.stop()


def curl(server, url_scheme: str, port: str, user: str, password: str, sender: str, rcpt: str, body: bytes,
         *extra: str) -> subprocess.CompletedProcess[bytes]:
    # -k: the server's certificate is the generated self-signed one; the test checks TLS happens, not the PKI.
    return subprocess.run(
        ["curl", "-sS", "-k", f"{url_scheme}://127.0.0.1:{server.ports[port]}", *extra, "-u", f"{user}:{password}",
         "--mail-from", sender, "--mail-rcpt", rcpt, "-T", "-", "--max-time", "20"],
        input=body, capture_output=True, timeout=30)


def test_starttls_and_auth(server):
    body = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: curl starttls\r\n\r\nhello\r\n"
    p = curl(server, "smtp", "submission", BOB, PASSWORDS[BOB], BOB, ALICE, body, "--ssl-reqd")
    assert p.returncode == 0, p.stderr
    assert any(b"Subject: curl starttls" in m for m in messages(server, ALICE))


def test_implicit_tls(server):
    body = b"From: alice@example.test\r\nSubject: curl smtps\r\n\r\nhello\r\n"
    p = curl(server, "smtps", "submissions", ALICE, PASSWORDS[ALICE], ALICE, BOB, body)
    assert p.returncode == 0, p.stderr
    assert any(b"Subject: curl smtps" in m for m in messages(server, BOB))


def test_wrong_password(server):
    p = curl(server, "smtp", "submission", BOB, "wrong", BOB, ALICE, b"From: bob@example.test\r\n\r\nx\r\n",
             "--ssl-reqd")
    assert p.returncode == 67, p.stderr  # CURLE_LOGIN_DENIED
    assert b"Login denied" in p.stderr


def test_without_tls_no_auth_and_mail_is_refused(server):
    p = curl(server, "smtp", "submission", BOB, PASSWORDS[BOB], BOB, ALICE, b"From: bob@example.test\r\n\r\nx\r\n")
    assert p.returncode == 55, p.stderr  # no AUTH offered in clear text, so MAIL is refused
    assert b"530" in p.stderr


def test_forged_sender(server):
    p = curl(server, "smtp", "submission", BOB, PASSWORDS[BOB], ALICE, ALICE, b"From: bob@example.test\r\n\r\nx\r\n",
             "--ssl-reqd")
    assert p.returncode != 0 and b"553" in p.stderr
