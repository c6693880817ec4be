"""Scenario 33: ``openssl s_client -starttls smtp`` typing the dialogue by hand (pipelined), and TLS versions."""

import base64
import subprocess

import pytest

from tests.e2e.msa_support import PASSWORDS, messages, msa

BOB = "bob@example.test"
ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    s = msa(tmp_path_factory.mktemp("msa33"))
    yield s
    s.stop()


def s_client(server, script: str, *args: str, port: str = "submission", starttls: bool = True) -> tuple[int, str]:
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{server.ports[port]}", "-crlf", "-ign_eof", *args]
    if starttls:
        cmd[2:2] = ["-starttls", "smtp"]
    p = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def replies(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln[:3].isdigit() and ln[3:4] in (" ", "-")]


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_dialogue_over_starttls(server):
    script = (f"EHLO client.test\nAUTH PLAIN {plain(BOB, PASSWORDS[BOB])}\nMAIL FROM:<{BOB}>\nRCPT TO:<{ALICE}>\n"
              f"DATA\nFrom: {BOB}\nSubject: typed by hand\n\nhi\n.\nQUIT\n")
    rc, out = s_client(server, script)
    assert rc == 0, out
    r = replies(out)
    assert "250-AUTH PLAIN LOGIN" in r
    assert "235 2.7.0 Authentication successful" in r
    assert any(x.startswith("250 2.0.0 OK queued as") for x in r)
    assert "221 2.0.0 Bye" in r
    assert any(b"Subject: typed by hand" in m for m in messages(server, ALICE))


def test_wrong_password_then_forged_sender(server):
    script = (f"EHLO client.test\nAUTH PLAIN {plain(BOB, 'nope')}\nAUTH PLAIN {plain(BOB, PASSWORDS[BOB])}\n"
              f"MAIL FROM:<{ALICE}>\nQUIT\n")
    rc, out = s_client(server, script)
    r = replies(out)
    assert "535 5.7.8 Authentication credentials invalid" in r
    assert "235 2.7.0 Authentication successful" in r
    assert any(x.startswith("553 5.7.1") for x in r)


@pytest.mark.parametrize("version,ok", [("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)])
def test_tls_versions(server, version, ok):
    # SECLEVEL=0 lets this client offer TLS 1.1; only the server's minimum (TLS 1.2, RFC 8996) can refuse it.
    rc, out = s_client(server, "QUIT\n", version, "-cipher", "DEFAULT:@SECLEVEL=0")
    if ok:
        assert rc == 0, out
        assert f"Protocol  : TLSv1.{version[-1]}" in out and "221 2.0.0 Bye" in out
    else:
        assert rc != 0 and "Cipher is (NONE)" in out


def test_implicit_tls_shows_certificate(server):
    rc, out = s_client(server, "EHLO client.test\nQUIT\n", port="submissions", starttls=False)
    assert rc == 0, out
    assert "subject=CN = mx.example.test" in out
    assert "250-AUTH PLAIN LOGIN" in replies(out)
