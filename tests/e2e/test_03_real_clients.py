"""Scenario 03: clients other people wrote — swaks (pipelining, STARTTLS) and curl smtp:// — against the MX role."""

import subprocess

import pytest


@pytest.fixture(scope="module")
def mx(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("mx3"))
    s.add_user("bob@example.test")
    s.start()
    yield s
    s.stop()


def subjects(mx):
    return [m["Subject"] for m in mx.parsed("bob@example.test")]


def swaks(*args):
    return subprocess.run(["swaks", *args], capture_output=True, text=True, timeout=60)


def test_swaks_pipeline(mx):
    p = swaks("--server", f"127.0.0.1:{mx.ports['smtp']}", "--pipeline", "--from", "a@else.test",
              "--to", "bob@example.test", "--header", "Subject: swaks-pipe")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "queued as" in p.stdout
    assert "swaks-pipe" in subjects(mx)


def test_swaks_starttls(mx):
    p = swaks("--server", f"127.0.0.1:{mx.ports['smtp']}", "--tls", "--from", "a@else.test",
              "--to", "bob@example.test", "--header", "Subject: swaks-tls")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "TLS started with cipher TLSv1." in p.stdout
    m = [m for m in mx.parsed("bob@example.test") if m["Subject"] == "swaks-tls"]
    assert "with ESMTPS" in m[0]["Received"] and "using TLSv1." in m[0]["Received"]


def test_swaks_refused_recipient(mx):
    p = swaks("--server", f"127.0.0.1:{mx.ports['smtp']}", "--from", "a@else.test", "--to", "x@elsewhere.test")
    assert p.returncode != 0
    assert "554 5.7.1 Relay access denied" in p.stdout


def test_curl_smtp(mx, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(b"Subject: via-curl\r\nFrom: a@else.test\r\n\r\n.dot line\r\nend\r\n")
    p = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{mx.ports['smtp']}", "--mail-from", "a@else.test",
                        "--mail-rcpt", "bob@example.test", "--upload-file", str(f)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    m = [m for m in mx.parsed("bob@example.test") if m["Subject"] == "via-curl"]
    assert m[0].get_payload() == ".dot line\nend\n"


def test_curl_smtp_starttls_required(mx, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(b"Subject: via-curl-tls\r\n\r\nx\r\n")
    p = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", f"smtp://127.0.0.1:{mx.ports['smtp']}",
                        "--mail-from", "a@else.test", "--mail-rcpt", "bob@example.test", "--upload-file", str(f)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "via-curl-tls" in subjects(mx)
