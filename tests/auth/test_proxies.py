"""``[http] trusted_proxies``: X-Forwarded-For is believed only from trusted peers, read from the right."""

from __future__ import annotations

import pytest

from courrier.auth import TrustedProxies
from courrier.config import ConfigError, from_mapping


def proxies(*nets: str) -> TrustedProxies:
    return TrustedProxies(from_mapping({"http": {"trusted_proxies": list(nets)}}).http.trusted_proxies)


def test_no_trusted_proxies_ignores_the_header():
    assert TrustedProxies().client("127.0.0.1", ["203.0.113.5"]) == "127.0.0.1"


def test_untrusted_peer_cannot_claim_an_address():
    p = proxies("10.0.0.0/8")
    assert p.client("198.51.100.9", ["203.0.113.5"]) == "198.51.100.9"


def test_rightmost_untrusted_hop_is_the_client():
    p = proxies("10.0.0.0/8", "192.0.2.1")
    # the client forged the first entry; our proxies appended the rest
    assert p.client("10.0.0.2", ["1.2.3.4, 203.0.113.5, 192.0.2.1"]) == "203.0.113.5"
    assert p.client("10.0.0.2", ["1.2.3.4", "203.0.113.5", "10.1.1.1"]) == "203.0.113.5"  # several fields: one list
    assert p.client("10.0.0.2", []) == "10.0.0.2"
    assert p.client("10.0.0.2", ["10.0.0.7, 10.0.0.8"]) == "10.0.0.7"  # every hop ours: the farthest one


def test_ports_brackets_and_garbage():
    p = proxies("::1", "127.0.0.1")
    assert p.client("::1", ["[2001:db8::5]:4711"]) == "2001:db8::5"
    assert p.client("127.0.0.1", ["203.0.113.5:8080"]) == "203.0.113.5"
    assert p.client("127.0.0.1", ["unknown"]) == "127.0.0.1"  # nothing readable: the proxy itself
    assert p.client("127.0.0.1", ["evil, 127.0.0.1"]) == "127.0.0.1"
    assert p.client("::ffff:127.0.0.1", ["203.0.113.5"]) == "203.0.113.5"  # IPv4-mapped peer


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["proxy.example"], [1]])
def test_bad_config_is_refused_with_the_key(value):
    with pytest.raises(ConfigError, match="http.trusted_proxies"):
        from_mapping({"http": {"trusted_proxies": value}})


def test_ipv6_prefix_config():
    assert from_mapping({}).limits.ipv6_prefix == 64
    assert from_mapping({"limits": {"ipv6_prefix": 56}}).limits.ipv6_prefix == 56
    with pytest.raises(ConfigError, match="limits.ipv6_prefix"):
        from_mapping({"limits": {"ipv6_prefix": 129}})
