"""Scenario 63: access control — htpasswd basic auth (checked with curl), the loopback-only default, and admin
accounts only in server mode."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support import free_port, run_cli


def curl(*args: str) -> tuple[int, str]:
    """(HTTP status, body) as curl sees them."""
    p = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                       timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


@pytest.fixture
def htpasswd(tmp_path):
    h = subprocess.run(["openssl", "passwd", "-apr1", "s3cret"], capture_output=True, text=True, check=True).stdout
    f = tmp_path / "users.htpasswd"
    f.write_text(f"# inspector users\nops:{h.strip()}\n")
    return f


def test_auth_file_requires_basic_auth(server_factory, htpasswd):
    srv = server_factory(listeners=("smtp", "http"), capture=True,
                         sections={"http": {"auth_file": str(htpasswd)}}).start()
    url = f"http://127.0.0.1:{srv.ports['http']}"
    assert curl(f"{url}/livez") == (200, "ok")  # health checks stay open
    code, body = curl(f"{url}/api/v1/messages")
    assert code == 401 and body == "authentication required"
    hdrs = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", f"{url}/"], capture_output=True,
                          text=True).stdout
    assert 'www-authenticate: basic realm="courrier"' in hdrs.lower()
    assert curl("-u", "ops:wrong", f"{url}/api/v1/messages")[0] == 401
    assert curl("-u", "nobody:s3cret", f"{url}/api/v1/messages")[0] == 401
    code, body = curl("-u", "ops:s3cret", f"{url}/api/v1/messages")
    assert code == 200 and '"total": 0' in body
    assert curl("-u", "ops:s3cret", f"{url}/")[0] == 200
    # courrier-only endpoints answer JSON errors
    code, body = curl(f"{url}/api/courrier/pause")
    assert code == 401 and body == '{"Error":"authentication required"}'


def test_non_loopback_bind_needs_auth_file(server_factory):
    port = free_port()
    srv = server_factory(listeners=("smtp",), capture=True, sections={"listen": {"http": f"0.0.0.0:{port}"}})
    p = run_cli("serve", "--config", str(srv.config), check=False, timeout=30)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert "refusing to serve the web UI on 0.0.0.0" in lines[-1] and "auth_file" in lines[-1]
    assert "Traceback" not in p.stderr

    waived = server_factory("waived", listeners=("smtp",), capture=True,
                            sections={"listen": {"http": f"0.0.0.0:{port}"},
                                      "http": {"allow_insecure_remote": True}}).start()
    deadline = time.monotonic() + 10
    while curl(f"http://127.0.0.1:{port}/readyz")[0] != 200:  # the HTTP listener binds after SMTP
        assert time.monotonic() < deadline and waived.proc.poll() is None, waived.log()
        time.sleep(0.05)


def test_server_mode_shows_mail_only_to_admins(server_factory):
    srv = server_factory(listeners=("smtp", "http"))
    srv.add_user("admin@example.test", "adminpw", "--admin")
    srv.add_user("bob@example.test", "bobpw")
    srv.start()
    url = f"http://127.0.0.1:{srv.ports['http']}"
    assert curl(f"{url}/api/v1/messages")[0] == 401
    assert curl("-u", "bob@example.test:bobpw", f"{url}/api/v1/messages")[0] == 401  # not an admin
    assert curl("-u", "admin@example.test:wrong", f"{url}/api/v1/messages")[0] == 401
    code, body = curl("-u", "admin@example.test:adminpw", f"{url}/api/courrier/accounts")
    assert code == 200 and '"Address":"bob@example.test"' in body and '"Admin":true' in body
    assert curl("-u", "admin@example.test:adminpw", f"{url}/api/courrier/queue") == (200, "[]")
    assert curl("-u", "admin@example.test:adminpw", f"{url}/api/courrier/delivery-log") == (200, "[]")
    assert curl("-u", "bob@example.test:bobpw", f"{url}/api/courrier/queue")[0] == 401
