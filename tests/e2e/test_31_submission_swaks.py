"""Scenario 31: swaks, the SMTP Swiss army knife, against the MSA: AUTH PLAIN and LOGIN over STARTTLS and port 465."""

import subprocess

import pytest

from tests.e2e.msa_support import PASSWORDS, messages, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa31"))
    yield s
    s.stop()


def swaks(server, *args: str, port: str = "submission") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["swaks", "--server", f"127.0.0.1:{server.ports[port]}", "--helo", "client.test",
                           "--timeout", "10", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_over_starttls_delivers(server, mech):
    subject = f"via swaks {mech}"
    p = swaks(server, "--tls", "--auth", mech, "--auth-user", BOB, "--auth-password", PASSWORDS[BOB],
              "--from", BOB, "--to", ALICE, "--h-From", f"Bob <{BOB}>", "--h-Subject", subject)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "=== TLS started with cipher TLSv1." in p.stdout
    assert "<~  235 2.7.0" in p.stdout and "<~  250 2.0.0 OK queued as" in p.stdout
    assert any(f"Subject: {subject}".encode() in m for m in messages(server, ALICE))


def test_implicit_tls_port(server):
    p = swaks(server, "--tlsc", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORDS[ALICE],
              "--from", ALICE, "--to", BOB, "--h-From", ALICE, "--h-Subject", "swaks 465", port="submissions")
    assert p.returncode == 0, p.stdout + p.stderr
    assert any(b"Subject: swaks 465" in m for m in messages(server, BOB))


def test_wrong_password(server):
    p = swaks(server, "--tls", "--auth", "LOGIN", "--auth-user", BOB, "--auth-password", "wrong",
              "--from", BOB, "--to", ALICE)
    assert p.returncode == 28, p.stdout + p.stderr  # swaks: authentication failed
    assert "<~* 535 5.7.8" in p.stdout


def test_auth_without_tls_is_not_offered(server):
    p = swaks(server, "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", PASSWORDS[BOB],
              "--from", BOB, "--to", ALICE)
    assert p.returncode == 28, p.stdout + p.stderr  # "server didn't advertise AUTH"
    assert "250-AUTH" not in p.stdout and "250 AUTH" not in p.stdout


def test_forged_header_from_is_553(server):
    p = swaks(server, "--tls", "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", PASSWORDS[BOB],
              "--from", BOB, "--to", ALICE, "--h-From", f'"Alice" <{ALICE}>')
    assert p.returncode != 0
    assert "<~* 553 5.7.1" in p.stdout


def test_forged_envelope_sender_is_553(server):
    p = swaks(server, "--tls", "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", PASSWORDS[BOB],
              "--from", ALICE, "--to", ALICE, "--h-From", BOB)
    assert p.returncode != 0
    assert "<~* 553 5.7.1" in p.stdout
