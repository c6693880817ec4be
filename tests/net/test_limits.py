"""Who a client is (``client_key``) and the per-protocol connection limiters built on it (issue 11, item 6)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier import config
from courrier.config import ConfigError, LimitsConfig
from courrier.net.limits import ConnectionLimiter, ConnectionLimits, Refusal, Slot, client_key


@pytest.mark.parametrize("ip,prefix,key", [
    ("192.0.2.7", 64, "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2:aaaa::1", 48, "2001:db8:1::/48"),
    ("2001:db8:1:2:aaaa::1", 128, "2001:db8:1:2:aaaa::1/128"),
    ("2001:DB8:0:0::1", 56, "2001:db8::/56"),
    ("::1", 64, "::/64"),
    ("::ffff:192.0.2.7", 64, "192.0.2.7"),  # IPv4-mapped: the IPv4 client it is
    ("fe80::1%eth0", 64, "fe80::/64"),  # zone index ignored
    ("", 64, ""),  # no IP (Unix socket): its own key
    ("not-an-ip", 64, "not-an-ip"),
])
def test_client_key(ip, prefix, key):
    assert client_key(ip, prefix) == key


def test_client_key_default_prefix_is_64():
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("2001:db8::1") != client_key("2001:db8:0:1::1")


@given(st.ip_addresses(v=6), st.ip_addresses(v=6), st.integers(min_value=1, max_value=128))
def test_two_ipv6_clients_are_one_exactly_when_they_share_the_prefix(a, b, prefix):
    if a.ipv4_mapped is not None or b.ipv4_mapped is not None:
        return  # those count as IPv4 clients (test_client_key)
    same_prefix = int(a) >> (128 - prefix) == int(b) >> (128 - prefix)
    assert (client_key(str(a), prefix) == client_key(str(b), prefix)) == same_prefix


def limits(**kw) -> LimitsConfig:
    return dataclasses.replace(LimitsConfig(), **kw)


def test_per_client_counts_an_ipv6_prefix_as_one_client():
    lim = ConnectionLimiter(limits(max_connections_per_ip=2, ipv6_prefix=64))
    a = lim.acquire("2001:db8::1")
    b = lim.acquire("2001:db8::2:3")
    assert isinstance(a, Slot) and isinstance(b, Slot)
    assert lim.acquire("2001:db8::ffff") is Refusal.PER_CLIENT  # a third address of the same /64
    assert isinstance(lim.acquire("2001:db8:0:1::1"), Slot)  # the next /64 is another client
    a.release()
    assert isinstance(lim.acquire("2001:db8::ffff"), Slot)


def test_total_cap_and_idempotent_release():
    lim = ConnectionLimiter(limits(max_connections=2))
    a, b = lim.acquire("192.0.2.1"), lim.acquire("192.0.2.2")
    assert lim.acquire("192.0.2.3") is Refusal.TOTAL
    assert isinstance(a, Slot) and isinstance(b, Slot)
    a.release()
    a.release()  # a second release must not free somebody else's slot
    assert lim.total == 1 and lim.per_client == {"192.0.2.2": 1}
    b.release()
    assert lim.total == 0 and lim.per_client == {}  # memory bounded by open connections


def test_each_protocol_has_its_own_budget():
    all_limits = ConnectionLimits(limits(max_connections=1))
    smtp = all_limits.for_listener("smtp")
    assert all_limits.for_listener("submission") is smtp and all_limits.for_listener("submissions") is smtp
    assert all_limits.for_listener("imaps") is all_limits.for_listener("imap") is not smtp
    assert isinstance(smtp.acquire("192.0.2.1"), Slot)
    assert all_limits.for_listener("submission").acquire("192.0.2.1") is Refusal.TOTAL
    for name in ("imap", "pop3", "managesieve"):
        assert isinstance(all_limits.for_listener(name).acquire("192.0.2.1"), Slot)


@pytest.mark.parametrize("value,reason", [(0, "between 1 and 128"), (129, "between 1 and 128"),
                                          ("64", "integer"), (True, "integer")])
def test_ipv6_prefix_is_validated(tmp_path: Path, value, reason):
    p = tmp_path / "c.toml"
    p.write_text(f"[limits]\nipv6_prefix = {str(value).lower() if isinstance(value, bool) else repr(value)}\n"
                 .replace("'", '"'))
    with pytest.raises(ConfigError) as e:
        config.load(p)
    assert e.value.key == "limits.ipv6_prefix" and reason in e.value.reason


def test_ipv6_prefix_and_junk_budget_are_read(tmp_path: Path):
    p = tmp_path / "c.toml"
    p.write_text("[limits]\nipv6_prefix = 48\nmax_junk_commands = 20\n")
    c = config.load(p)
    assert c.limits.ipv6_prefix == 48 and c.limits.max_junk_commands == 20
    assert LimitsConfig().ipv6_prefix == 64 and LimitsConfig().max_junk_commands == 100
