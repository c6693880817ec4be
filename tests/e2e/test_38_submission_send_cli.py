"""Scenario 38: ``courrier send --user U --password-stdin --starttls`` against an MSA that treats loopback like any
remote client (``trust_loopback = false``): the whole AUTH-after-TLS path of issue 4 with courrier's own client."""

import pytest

from tests.e2e.msa_support import PASSWORDS, messages, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa38"))
    yield s
    s.stop()


def send(server, *args: str):
    return server.cli("send", "--server", f"127.0.0.1:{server.ports['submission']}", "--user", BOB,
                      "--password-stdin", "--from", BOB, "--to", ALICE, *args, input=PASSWORDS[BOB] + "\n",
                      check=False)


def test_starttls_auth_send(server):
    p = send(server, "--starttls", "--subject", "from courrier send", "--body", "hi", "--trace")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "AUTH PLAIN LOGIN" in p.stdout and "235" in p.stdout and PASSWORDS[BOB] not in p.stdout
    assert any(b"Subject: from courrier send" in m for m in messages(server, ALICE))


def test_without_tls_the_server_refuses(server):
    p = send(server, "--subject", "in clear", "--body", "hi")
    assert p.returncode == 1 and "AUTH" in p.stderr  # no AUTH offered before TLS: one line, no traceback
    assert "Traceback" not in p.stderr
    assert not any(b"Subject: in clear" in m for m in messages(server, ALICE))
