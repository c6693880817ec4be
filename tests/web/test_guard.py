"""RequestGuard's pure logic (web/guard.py) and its config keys: which Host names are this server, which Origins
are its own; the wire behaviour is tests/e2e/test_65w_http_origin_host.py."""

from __future__ import annotations

import pytest

from courrier.config import ConfigError, from_mapping
from courrier.web.guard import RequestGuard, split_host

SCOPE = {"type": "http", "server": ("127.0.0.1", 8025), "scheme": "http"}


def guard(**http):
    cfg = from_mapping({"hostname": "mail.example.org", "http": http,
                        "listen": {"http": ["127.0.0.1:8025", "192.0.2.10:8025"]}})
    return RequestGuard(lambda *a: None, cfg)


@pytest.mark.parametrize("value, want", [
    ("localhost", ("localhost", None)), ("LocalHost:8025", ("localhost", 8025)), ("[::1]:8025", ("::1", 8025)),
    ("example.org.", ("example.org", None)), ("a b", None), ("x/y", None), ("[::1", None), ("h:80x", None),
    ("h:1234567", None), ("évil.test", None), ("u@h", None), ("", None)])
def test_split_host(value, want):
    assert split_host(value) == want


def test_hosts_this_server_answers_to():
    g = guard()
    for host in ("localhost", "localhost:8025", "app.localhost", "127.0.0.1", "127.9.9.9:1", "[::1]:8025",
                 "mail.example.org", "MAIL.EXAMPLE.ORG.:8025", "192.0.2.10:8025", None):
        assert g.host_ok(host, SCOPE), host
    for host in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "192.0.2.11", "[2001:db8::1]",
                 "mail.example.org.evil.example", "", "a b", "0x7f000001"):
        assert not g.host_ok(host, SCOPE), host
    # the address the connection came in on (a listener on 0.0.0.0 reached by the machine's LAN address)
    assert g.host_ok("198.51.100.7:8025", {**SCOPE, "server": ("198.51.100.7", 8025)})
    assert guard(allowed_hosts=["mail.dev.test", "[2001:db8::1]"]).host_ok("[2001:db8::1]:80", SCOPE)
    assert guard(allowed_hosts=["*"]).host_ok("anything.example", SCOPE)


def test_origins_that_are_this_server():
    g = guard(allowed_origins=["http://app.dev.test:3000"])
    assert g.origin_ok("http://127.0.0.1:8025", "127.0.0.1:8025", SCOPE)
    assert g.origin_ok("https://mail.example.org", "mail.example.org", {**SCOPE, "scheme": "https"})
    assert g.origin_ok("http://localhost", "localhost:80", SCOPE)  # default ports
    assert g.origin_ok("http://app.dev.test:3000", "127.0.0.1:8025", SCOPE)
    assert g.origin_ok("HTTP://APP.DEV.TEST:3000/", "127.0.0.1:8025", SCOPE)
    for origin in ("null", "http://evil.example", "http://127.0.0.1:3000", "http://127.0.0.1", "file://",
                   "http://app.dev.test:3001", "http://127.0.0.1:8025.evil.example", "ftp://127.0.0.1:8025",
                   "http://[::1", ""):
        assert not g.origin_ok(origin, "127.0.0.1:8025", SCOPE), origin
    assert guard(allowed_origins=["*"]).origin_ok("http://anyone.example", "127.0.0.1:8025", SCOPE)


def test_config_keys_are_validated():
    cfg = from_mapping({"http": {"allowed_origins": ["http://localhost:3000/", "*"],
                                 "allowed_hosts": ["Mail.Dev.Test.", "::1", "*"]},
                        "capture": {"release_allowed": r"@example\.org$"}})
    assert cfg.http.allowed_origins == ("http://localhost:3000", "*")
    assert cfg.http.allowed_hosts == ("mail.dev.test", "::1", "*")
    assert cfg.capture.release_allowed == r"@example\.org$"
    d = from_mapping({})
    assert d.http.allowed_origins == () and d.http.allowed_hosts == () and d.capture.release_allowed == ""
    for bad in ({"http": {"allowed_origins": ["localhost:3000"]}}, {"http": {"allowed_origins": "http://x"}},
                {"http": {"allowed_origins": ["http://x/path"]}}, {"http": {"allowed_hosts": ["a b"]}},
                {"http": {"allowed_hosts": [1]}}, {"capture": {"release_allowed": "(unclosed"}}):
        with pytest.raises(ConfigError):
            from_mapping(bad)
