"""The [filter] section: its keys, their defaults, and one line for each bad value."""

from __future__ import annotations

import pytest

from courrier.config import ConfigError, HostPort, from_mapping


def test_defaults_filter_nothing() -> None:
    f = from_mapping({}).filter
    assert f.spamd is None and f.reject_score == 0 and f.dnsbl == ()
    assert from_mapping({"filter": {"spamd": ""}}).filter.spamd is None


def test_keys() -> None:
    f = from_mapping({"filter": {"spamd": "127.0.0.1:783", "reject_score": 10.5,
                                 "dnsbl": ["zen.spamhaus.org.", "BL.Example", "bl.example"]}}).filter
    assert f.spamd == HostPort("127.0.0.1", 783) and f.reject_score == 10.5
    assert f.dnsbl == ("zen.spamhaus.org", "bl.example")


@pytest.mark.parametrize("table, key", [
    ({"spamd": "localhost"}, "filter.spamd"),  # no port
    ({"spamd": 783}, "filter.spamd"),
    ({"spamd": "127.0.0.1:783", "reject_score": -1}, "filter.reject_score"),
    ({"spamd": "127.0.0.1:783", "reject_score": "high"}, "filter.reject_score"),
    ({"reject_score": 10}, "filter.reject_score"),  # a score needs spamd to give one
    ({"dnsbl": "bl.example"}, "filter.dnsbl"),
    ({"dnsbl": ["not a zone"]}, "filter.dnsbl"),
    ({"rspamd": "127.0.0.1:11333"}, "filter.rspamd"),
])
def test_bad_values_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_mapping({"filter": table}, file="c.toml")
    assert e.value.key == key and "\n" not in str(e.value)
