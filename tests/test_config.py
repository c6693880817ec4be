"""Configuration: defaults, precedence, and one-line refusals naming file, key and reason."""

import os
from pathlib import Path

import pytest

from courrier import config
from courrier.config import ConfigError, HostPort
from tests.support import run_cli


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_match_the_contract(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COURRIER_CONFIG", raising=False)
    c = config.load()
    assert c.hostname == "localhost" and c.trust_loopback is True and c.domains == ("localhost",)
    assert c.mode == "server" and c.data_dir == tmp_path / "courrier-data"
    assert c.listen.smtp == (HostPort("127.0.0.1", 1025),)
    assert [getattr(c.listen, n)[0].port for n in config.LISTENER_NAMES] == [
        1025, 1587, 1465, 1110, 1995, 1143, 1993, 5190, 8025]
    assert c.limits.max_message_size == 26214400 and c.limits.max_recipients == 100
    assert c.limits.max_connections == 10000 and c.limits.max_connections_per_ip == 200
    assert c.limits.auth_failures_per_ip == 10
    assert c.limits.idle_timeout == 300 and c.limits.data_timeout == 600
    assert c.delivery.mx_port == 25 and c.delivery.retry_first == 300 and c.delivery.retry_max == 4 * 3600
    assert c.delivery.max_lifetime == 5 * 86400 and c.delivery.delay_notice == 4 * 3600
    assert c.delivery.mta_sts and c.delivery.dane and c.delivery.mta_sts_port == 443
    assert c.delivery.tls_ca_file is None
    assert c.capture.max_messages == 500 and c.capture.accept_any_auth and not c.capture.fail_by_address
    assert c.auth.checks and c.auth.dmarc_reject
    assert c.store.backend == "local" and c.store.dsn == "" and c.store.node == ""


def test_values_parse(tmp_path):
    p = write(tmp_path, """
hostname = "mx.example.org"
domains = ["Example.org", "example.net"]
data_dir = "d"
[listen]
smtp = ["0.0.0.0:25", "[::1]:2525"]
imap = ""
[limits]
idle_timeout = "30s"
data_timeout = 90
[delivery]
nameservers = ["127.0.0.1:5353", "10.0.0.1"]
retry_first = "2m"
max_lifetime = "1d"
smarthost = "relay.example.org:587"
""")
    c = config.load(p)
    assert c.domains == ("example.org", "example.net")
    assert c.data_dir == tmp_path / "d"
    assert c.listen.smtp == (HostPort("0.0.0.0", 25), HostPort("::1", 2525))
    assert c.listen.imap == ()
    assert c.limits.idle_timeout == 30 and c.limits.data_timeout == 90
    assert c.delivery.nameservers == (HostPort("127.0.0.1", 5353), HostPort("10.0.0.1", 53))
    assert c.delivery.retry_first == 120 and c.delivery.max_lifetime == 86400
    assert c.delivery.smarthost == HostPort("relay.example.org", 587)


@pytest.mark.parametrize("text,key,reason", [
    ('hostnme = "x"', "hostnme", "unknown key"),
    ('[limits]\nidle_timeout = "5 minutes"', "limits.idle_timeout", "bad duration"),
    ('[listen]\nsmtp = "127.0.0.1:99999"', "listen.smtp", "bad port"),
    ('[listen]\nsmtp = "127.0.0.1"', "listen.smtp", "missing port"),
    ('[listen]\nsmtp = "::1:25"', "listen.smtp", "IPv6"),
    ('domains = ["bad domain"]', "domains", "bad domain"),
    ('domains = []', "domains", "non-empty"),
    ('[limits]\nmax_recipients = 0', "limits.max_recipients", "at least 1"),
    ('[limits]\nmax_recipients = "10"', "limits.max_recipients", "integer"),
    ('mode = "relay"', "mode", "capture"),
    ('[delivery]\nmx_port = 0', "delivery.mx_port", "bad port"),
    ('[capture]\nfail_by_address = "yes"', "capture.fail_by_address", "true or false"),
    ('[tls]\ncert = "/nonexistent.pem"\nkey = "/nonexistent.key"', "tls.cert", "cannot read"),
    ('[tls]\ncert = "/etc/hostname"', "tls.key", "together"),
    ('[delivery]\ntls_ca_file = "/nonexistent.pem"', "delivery.tls_ca_file", "cannot read"),
    ('[delivery]\ntls_ca_file = "/etc/hostname"', "delivery.tls_ca_file", "no PEM CA certificate"),
    ('[delivery]\nmta_sts = "yes"', "delivery.mta_sts", "true or false"),
    ('[delivery]\nmta_sts_port = 0', "delivery.mta_sts_port", "bad port"),
    ('[limits]\nbogus = 1', "limits.bogus", "unknown key"),
    ('source = "x"', "source", "unknown key"),
    ('listen = 1', "listen", "expected a table"),
    ('[dkim.keys]\n"bad domain" = "k.pem"', "dkim.keys.bad domain", "bad domain"),
    ('[auth]\ncheck_timeout = 0', "auth.check_timeout", "longer than 0"),
    ('[store]\nbackend = "mysql"', "store.backend", "postgresql"),
    ('[store]\nbackend = "postgresql"', "store.dsn", "needed"),
    ('[store]\ndsn = "mysql://x"', "store.dsn", "postgresql://"),
])
def test_bad_values_are_refused_with_file_key_reason(tmp_path, text, key, reason):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    assert e.value.file == str(p) and e.value.key == key and reason in e.value.reason
    assert "\n" not in str(e.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "hostname = "))
    with pytest.raises(ConfigError, match="is a directory"):
        config.load(tmp_path)


def test_precedence_flags_config_env_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, 'hostname = "local.test"', "courrier.toml")
    env_file = write(tmp_path, 'hostname = "env.test"', "env.toml")
    flag_file = write(tmp_path, 'hostname = "flag.test"\ndata_dir = "x"', "flag.toml")
    monkeypatch.delenv("COURRIER_CONFIG", raising=False)
    assert config.load().hostname == "local.test"
    monkeypatch.setenv("COURRIER_CONFIG", str(env_file))
    assert config.load().hostname == "env.test"
    c = config.load(flag_file)
    assert c.hostname == "flag.test" and c.data_dir == tmp_path / "x"
    c = config.load(flag_file, data_dir=tmp_path / "y", capture=True)
    assert c.data_dir == tmp_path / "y" and c.mode == "capture"


def test_cli_reports_config_error_in_one_line(tmp_path):
    p = write(tmp_path, '[limits]\nidle_timeout = "soon"')
    r = run_cli("serve", "--config", str(p), check=False)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert str(p) in r.stderr and "limits.idle_timeout" in r.stderr and "Traceback" not in r.stderr


def test_cli_env_config_is_used(tmp_path):
    p = write(tmp_path, f'data_dir = "{tmp_path / "envdata"}"\ndomains = ["example.test"]')
    env = {**os.environ, "COURRIER_CONFIG": str(p), "COURRIER_ARGON2_PROFILE": "cheapest"}
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "courrier", "user", "add", "a@example.test", "--password-stdin"],
                       input="pw\n", capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "envdata" / "courrier.db").exists()


# One TOML value per key, each different from the default: a key added to a section without a sample here fails
# test_every_setting_is_readable, so every key is proved readable from a file.
SAMPLES = {
    "hostname": "mx.example.org", "trust_loopback": False, "domains": ["example.org"], "data_dir": "d",
    "mode": "capture", "user": "courrier",
    **{f"listen.{n}": "127.0.0.1:2999" for n in config.LISTENER_NAMES},
    "tls.cert": "/etc/hostname", "tls.key": "/etc/hostname",
    "tls.domains": {"example.org": {"cert": "/etc/hostname", "key": "/etc/hostname"}},
    "limits.max_message_size": 1000, "limits.max_recipients": 3, "limits.max_connections": 7,
    "limits.max_connections_per_ip": 2, "limits.auth_failures_per_ip": 4, "limits.idle_timeout": "7s",
    "limits.data_timeout": "8s", "limits.max_errors": 2, "limits.ipv6_prefix": 56, "limits.max_junk_commands": 9,
    "delivery.nameservers": ["127.0.0.1:5353"], "delivery.mx_port": 2525, "delivery.smarthost": "relay.test",
    "delivery.smarthost_user": "u", "delivery.smarthost_password": "p", "delivery.retry_first": "1s",
    "delivery.retry_max": "2s", "delivery.max_lifetime": "3s", "delivery.delay_notice": "1s",
    "delivery.concurrency_per_destination": 1, "delivery.connect_timeout": "2s",
    "delivery.mta_sts": False, "delivery.dane": False, "delivery.mta_sts_port": 8443,
    "delivery.tls_ca_file": "/etc/ssl/certs/ca-certificates.crt",
    "dkim.selector": "s1", "dkim.keys": {"example.org": "k.pem"},
    "capture.max_messages": 5, "capture.max_age": "1h", "capture.accept_any_auth": False,
    "capture.fail_by_address": True, "capture.release_allowed": "@example\\.org$",
    "capture.chaos": True, "capture.link_check_internal": True, "capture.spamassassin": "127.0.0.1:783",
    "capture.ignore_duplicate_ids": True, "capture.tag_rules": [{"query": "subject:invoice", "tags": ["billing"]}],
    "capture.tag_username": True, "capture.allowed_recipients": "@example\\.org$",
    "auth.checks": False, "auth.dmarc_reject": False, "auth.check_timeout": "1s",
    "submission.sent_copy": True,
    "http.auth_file": "auth", "http.allow_insecure_remote": True, "http.webhook_url": "http://127.0.0.1:9/h",
    "http.trusted_proxies": ["10.0.0.0/8"], "http.allowed_origins": ["http://localhost:3000"],
    "http.allowed_hosts": ["mail.example.org"],
    "http.metrics": False,
    "filter.spamd": "127.0.0.1:783", "filter.reject_score": 10.0, "filter.dnsbl": ["zen.example.org"],
    "accounts.default_quota": "1G",
    "store.backend": "postgresql", "store.dsn": "postgresql://u@127.0.0.1:5432/mail", "store.node": "n1",
    "store.lease": "7s", "store.pool_size": 3, "store.timeout": "2s",
}


def all_keys() -> list[str]:
    """Every key `from_mapping` reads, derived from the dataclasses' settings ("section.key" below the top)."""
    keys = []
    for f in config.dataclasses.fields(config.Config):
        if "section" in f.metadata:
            keys += [f"{f.name}.{g.name}" for g in config.dataclasses.fields(f.metadata["section"])]
        elif "parse" in f.metadata:
            keys.append(f.name)
    return keys


@pytest.mark.parametrize("key", all_keys())
def test_every_setting_is_readable(tmp_path, key):
    """Each key is read from a file into its field (and a documented default differs from the sample)."""
    assert key in SAMPLES, f"{key}: add a sample value to SAMPLES"
    section, _, name = key.rpartition(".")
    raw: dict = {name: SAMPLES[key]}
    if key in ("tls.cert", "tls.key"):  # cert and key go together
        raw = {"cert": SAMPLES["tls.cert"], "key": SAMPLES["tls.key"]}
    if key == "filter.reject_score":  # a score needs the spamd that gives it
        raw["spamd"] = SAMPLES["filter.spamd"]
    if key == "store.backend":  # the postgresql backend needs its database
        raw["dsn"] = SAMPLES["store.dsn"]
    c = config.from_mapping({section: raw} if section else raw, file="x.toml", base=tmp_path)
    got = getattr(getattr(c, section) if section else c, name)
    default = getattr(getattr(config.Config(), section) if section else config.Config(), name)
    assert got != default, key


def test_every_setting_is_documented():
    """docs/config.md names each key in its table's section, so the reference stays true as keys are added."""
    doc = (Path(__file__).parent.parent / "docs" / "config.md").read_text()
    parts = {"": doc.split("\n## `[", 1)[0]}
    for chunk in doc.split("\n## `[")[1:]:
        parts[chunk.split("]", 1)[0]] = chunk
    for key in all_keys():
        section, _, name = key.rpartition(".")
        assert f"`{name}`" in parts[section], f"{key} is not in docs/config.md"
