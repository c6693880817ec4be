"""Per-domain certificates chosen by SNI (courrier/tlsutil.py), `[tls.domains]` parsing and what SIGHUP may apply
(courrier/config.py): real TLS handshakes over loopback with Python's ssl client, no mocks."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from courrier import config, tlsutil
from courrier.net.bind import BindFailure, bind_listening
from tests.support import run_cli


def pair(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tlsutil.build_self_signed(name)
    (tmp / f"{name}.crt").write_bytes(cert)
    (tmp / f"{name}.key").write_bytes(key)
    return tmp / f"{name}.crt", tmp / f"{name}.key"


@pytest.mark.parametrize(("asked", "chosen"), [
    ("mail.example.org", "mail.example.org"),
    ("MAIL.Example.ORG.", "mail.example.org"),        # case and a trailing dot do not matter
    ("imap.example.net", "*.example.net"),
    ("example.net", None),                            # a wildcard needs one more label…
    ("a.b.example.net", None),                        # …and only one (RFC 6125 §6.4.3)
    ("other.test", None),
    (None, None),                                     # no SNI
    ("", None),
])
def test_select_exact_then_wildcard_then_default(asked, chosen):
    names = {"mail.example.org": 1, "*.example.net": 2, "*.example.org": 3}
    assert tlsutil.select(names, asked) == chosen


def test_exact_name_wins_over_wildcard():
    assert tlsutil.select({"*.example.org": 1, "mail.example.org": 2}, "mail.example.org") == "mail.example.org"
    assert tlsutil.select({"*.example.org": 1, "mail.example.org": 2}, "imap.example.org") == "*.example.org"


def served_name(port: int, host: str, server_name: str | None) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as s:
        der = s.getpeercert(binary_form=True)
    cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cn[0].value)


def test_handshakes_pick_by_sni_and_install_swaps(tmp_path):
    """A real listener: each SNI name gets its certificate, no SNI the default; `install` changes what new
    handshakes get without rebinding."""
    sni = tlsutil.SNIServer(tlsutil.CertSet(pair(tmp_path, "default.test"), {
        "mail.a.test": pair(tmp_path, "mail.a.test"), "*.b.test": pair(tmp_path, "x.b.test")}))

    async def scenario() -> list[str]:
        async def greet(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        [sock] = bind_listening("test", config.HostPort("127.0.0.1", 0))
        server = await asyncio.start_server(greet, sock=sock, ssl=sni.context)
        port = sock.getsockname()[1]
        seen = [await asyncio.to_thread(served_name, port, "127.0.0.1", n)
                for n in ("mail.a.test", "imap.b.test", "c.test", None)]
        sni.install(tlsutil.CertSet(pair(tmp_path, "renewed.test"), {}))
        seen.append(await asyncio.to_thread(served_name, port, "127.0.0.1", "mail.a.test"))
        server.close()
        await server.wait_closed()
        return seen

    assert asyncio.run(scenario()) == ["mail.a.test", "x.b.test", "default.test", "default.test", "renewed.test"]


def test_a_broken_pair_is_refused_whole_in_one_line(tmp_path):
    good = pair(tmp_path, "default.test")
    bad = tmp_path / "bad.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(tlsutil.CertError) as e:
        tlsutil.CertSet(good, {"mail.a.test": (bad, good[1])})
    assert "tls.domains.mail.a.test" in str(e.value) and str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(tlsutil.CertError, match="No such file"):
        tlsutil.CertSet((tmp_path / "missing.crt", good[1]), {})


def test_ipv6_and_ipv4_side_by_side_on_one_port():
    """IPV6_V6ONLY: "[::1]:P" binds beside "127.0.0.1:P" (dual-stack would take the IPv4 port too)."""
    [v4] = bind_listening("smtp", config.HostPort("127.0.0.1", 0))
    v4.listen()  # what the event loop does at start_serving
    port = v4.getsockname()[1]
    try:
        [v6] = bind_listening("smtp", config.parse_hostport(f"[::1]:{port}"))
        assert v6.family == socket.AF_INET6 and v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        v6.close()
        with pytest.raises(BindFailure, match=rf"cannot listen for smtp on 127\.0\.0\.1:{port}: address already"):
            bind_listening("smtp", config.HostPort("127.0.0.1", port))
    finally:
        v4.close()


def test_tls_domains_tables_parse(tmp_path):
    crt, key = pair(tmp_path, "a.test")
    text = (f'[tls.domains."Mail.Example.org"]\ncert = "{crt.name}"\nkey = "{key.name}"\n'
            f'[tls.domains."*.example.net"]\ncert = "{crt}"\nkey = "{key}"\n')
    (tmp_path / "c.toml").write_text(text)
    cfg = config.load(tmp_path / "c.toml")
    assert cfg.tls.domains == {"mail.example.org": config.CertPair(crt, key),
                               "*.example.net": config.CertPair(crt, key)}


@pytest.mark.parametrize(("table", "key", "reason"), [
    ('[tls.domains."a.test"]\ncert = "c.pem"\n', "tls.domains.a.test", "cert and key must be given together"),
    ('[tls.domains."a.test"]\ncert = "c.pem"\nkey = "k.pem"\nchain = "x"\n', "tls.domains.a.test", "unknown key"),
    ('[tls.domains."a..test"]\ncert = "c.pem"\nkey = "k.pem"\n', "tls.domains.a..test", "bad domain name"),
    ('[tls.domains."a.*.test"]\ncert = "c.pem"\nkey = "k.pem"\n', "tls.domains.a.*.test", "bad domain name"),
    ('[tls.domains."a.test"]\ncert = "missing.pem"\nkey = "missing.pem"\n', "tls.domains.a.test.cert", "cannot read"),
    ("[tls]\ndomains = 3\n", "tls.domains", "expected tables"),
])
def test_bad_tls_domains_are_one_line(tmp_path, table, key, reason):
    (tmp_path / "c.toml").write_text(table)
    with pytest.raises(config.ConfigError) as e:
        config.load(tmp_path / "c.toml")
    assert e.value.key == key and reason in e.value.reason, str(e.value)


def test_listen_lists_parse_ipv6():
    cfg = config.from_mapping({"listen": {"smtp": ["0.0.0.0:25", "[::]:25"], "imaps": "[::1]:2993", "pop3": ""}})
    assert cfg.listen.smtp == (config.HostPort("0.0.0.0", 25), config.HostPort("::", 25))
    assert [str(a) for a in cfg.listen.imaps] == ["[::1]:2993"] and cfg.listen.pop3 == ()
    with pytest.raises(config.ConfigError, match="write IPv6 addresses as"):
        config.from_mapping({"listen": {"smtp": "::1:25"}})


def test_changed_keys_split_into_reloadable_and_restart():
    old = config.from_mapping({})
    new = config.from_mapping({"limits": {"max_recipients": 3, "ipv6_prefix": 48}, "hostname": "mx.test",
                               "listen": {"smtp": ["127.0.0.1:2525", "[::1]:2525"]},
                               "filter": {"dnsbl": ["zen.test"]}, "dkim": {"selector": "s2"}})
    live, restart = config.changed_keys(old, new)
    assert live == ["limits.max_recipients", "dkim.selector", "filter.dnsbl"]
    assert restart == ["hostname", "listen.smtp", "limits.ipv6_prefix"]
    assert config.changed_keys(old, config.from_mapping({})) == ([], [])
    merged = config.with_values_of(new, old, live)
    assert merged.limits.max_recipients == 3 and merged.dkim.selector == "s2" and merged.filter.dnsbl == ("zen.test",)
    assert merged.limits.ipv6_prefix == 64 and merged.hostname == "localhost" and merged.listen == old.listen
    assert config.changed_keys(merged, new) == ([], restart)


def test_load_again_keeps_the_command_line_flags(tmp_path):
    (tmp_path / "c.toml").write_text('data_dir = "d1"\n')
    cfg = config.load(tmp_path / "c.toml", data_dir=tmp_path / "flag", capture=True)
    (tmp_path / "c.toml").write_text('data_dir = "d2"\n[limits]\nmax_recipients = 5\n')
    again = config.load_again(cfg)
    assert again.data_dir == (tmp_path / "flag").resolve() and again.capture_mode
    assert config.changed_keys(cfg, again) == (["limits.max_recipients"], [])


def test_check_config_names_a_broken_sni_pair(tmp_path):
    """`courrier serve --check-config` loads every [tls.domains] pair, one line for each that does not load."""
    good = pair(tmp_path, "a.test")
    (tmp_path / "bad.crt").write_text("not a certificate\n")
    listen = "".join(f'{n} = ""\n' for n in config.LISTENER_NAMES)
    (tmp_path / "c.toml").write_text(
        f'data_dir = "d"\n[listen]\n{listen}'
        f'[tls.domains."a.test"]\ncert = "{good[0]}"\nkey = "{good[1]}"\n'
        f'[tls.domains."b.test"]\ncert = "bad.crt"\nkey = "{good[1]}"\n')
    p = run_cli("serve", "--check-config", "--config", str(tmp_path / "c.toml"), check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    [line] = p.stdout.splitlines()
    assert line.startswith(f"cannot load TLS certificate of tls.domains.b.test {tmp_path / 'bad.crt'} / key ")
