"""Configuration: `courrier.toml` → frozen dataclasses.

Every key of shared/CONTRACT.md is here with its default. Loading is strict: an unknown key, a bad address, port or
duration, or an unreadable file stops the program with one line naming the file, the key and the reason — a typo in
a mail server's config must never be silently ignored.

Precedence (highest first): command-line flags > ``--config FILE`` > ``$COURRIER_CONFIG`` > ``./courrier.toml`` >
the defaults below.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem, reported as one line: file, key, reason."""

    def __init__(self, file: str | None, key: str | None, reason: str) -> None:
        self.file, self.key, self.reason = file, key, reason
        where = file or "<defaults>"
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


# --------------------------------------------------------------------------- value parsers

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """"30s", "5m", "4h", "5d" or a number of seconds → seconds (float)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", \"5m\", \"4h\", \"5d\" or seconds")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT[m.group(2)]
    raise ValueError(f"bad duration {value!r} (expected \"30s\", \"5m\", \"4h\", \"5d\" or seconds)")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(value: Any) -> int:
    """Octets, or a number with a K/M/G suffix (×1024: "500M", "1G", "1.5G") → octets; what quotas are written in."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1048576, \"500M\" or \"1G\"")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return int(float(m.group(1)) * _SIZE_UNIT[m.group(2).lower()])
    raise ValueError(f"bad size {value!r} (expected octets or a K/M/G suffix: 1048576, \"500M\", \"1G\")")


def format_size(octets: int) -> str:
    """Octets for people: "812", "12.3K", "500M", "1G" (×1024, the units ``parse_size`` reads back)."""
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if octets >= factor:
            v = octets / factor
            return f"{v:.0f}{unit}" if v == int(v) or v >= 100 else f"{v:.1f}{unit}"
    return str(octets)


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_hostport(value: Any, default_port: int | None = None) -> HostPort:
    """"HOST:PORT" or "[v6]:PORT" (or "HOST" when a default port is given) → HostPort."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"bad address {value!r} (expected \"HOST:PORT\" or \"[::1]:PORT\")")
    value = value.strip()
    if value.startswith("["):
        m = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", value)
        if not m:
            raise ValueError(f"bad address {value!r} (expected \"[::1]:PORT\")")
        host, port_s = m.group(1), m.group(2)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bad IPv6 address in {value!r}") from None
    else:
        if value.count(":") > 1:
            raise ValueError(f"bad address {value!r} (write IPv6 addresses as \"[::1]:PORT\")")
        host, _, port_s = value.partition(":")
        port_s = port_s or None
        if not host or not re.match(r"^[A-Za-z0-9._-]+$", host):
            raise ValueError(f"bad host in {value!r}")
    if port_s is None:
        if default_port is None:
            raise ValueError(f"missing port in {value!r} (expected \"HOST:PORT\")")
        return HostPort(host, default_port)
    port = int(port_s) if port_s.isdigit() else -1
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {value!r} (1-65535)")
    return HostPort(host, port)


_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def parse_domain(value: Any) -> str:
    if not isinstance(value, str) or not _DOMAIN.match(value.strip().rstrip(".")):
        raise ValueError(f"bad domain name {value!r}")
    return value.strip().rstrip(".").lower()


# --------------------------------------------------------------------------- settings

_NO_DEFAULT: Any = dataclasses.MISSING


def setting(default: Any = _NO_DEFAULT, *, parse: Any, doc: str, factory: Any = _NO_DEFAULT,
            reload: bool = False) -> Any:
    """One config key, written once: its default, the parser of its TOML value, a one-line meaning, and whether
    SIGHUP applies a new value to the running server (``reload``; otherwise a change waits for a restart and the
    reload names it, see `changed_keys`).

    The key's name is the field's name and its table the section's; `from_mapping` reads every field that carries
    this metadata, so a key cannot be added to a section without becoming readable (and unknown keys stay refused).
    `parse` turns the TOML value into the field's value or raises ValueError with the reason; a parser marked
    `_relative` also receives the config file's folder.
    """
    meta = {"parse": parse, "doc": doc, "reload": reload}
    if factory is not _NO_DEFAULT:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _live(default: Any = _NO_DEFAULT, **kw: Any) -> Any:
    """A `setting` that SIGHUP applies to the running server (see docs/operations.md, "Reloading")."""
    return setting(default, reload=True, **kw)


def section(cls: type, *, check: Any = None) -> Any:
    """A `[table]` of the file, read by the settings of `cls`; `check(value, file)` validates keys together."""
    return field(default_factory=cls, metadata={"section": cls, "check": check})


class _SubkeyError(ValueError):
    """A bad entry inside a table-valued key (e.g. `dkim.keys.<domain>`), reported under its own key."""

    def __init__(self, subkey: str, reason: str) -> None:
        super().__init__(reason)
        self.subkey = subkey


def _relative(conv: Any) -> Any:
    conv.relative = True
    return conv


def _positive_duration(v: Any) -> float:
    seconds = parse_duration(v)
    if seconds <= 0:
        raise ValueError("must be longer than 0 seconds")
    return seconds


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _int(minimum: int = 0) -> Any:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected an integer, got {v!r}")
        if v < minimum:
            raise ValueError(f"must be at least {minimum}")
        return v

    return conv


def _int_range(minimum: int, maximum: int) -> Any:
    def conv(v: Any) -> int:
        v = _int()(v)
        if not minimum <= v <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return v

    return conv


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _listeners(v: Any) -> tuple[HostPort, ...]:
    items = v if isinstance(v, list) else [v]
    return tuple(parse_hostport(item) for item in items if item != "")


def _nameservers(v: Any) -> tuple[HostPort, ...]:
    items = v if isinstance(v, list) else [v]
    return tuple(parse_hostport(i, default_port=53) for i in items)


def _smarthost(v: Any) -> HostPort:
    return parse_hostport(v, default_port=25)


def _networks(v: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A list of IP addresses or CIDR networks (a single string is a list of one)."""
    items = v if isinstance(v, list) else [v]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected addresses or networks as strings, got {item!r}")
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return tuple(out)


def _domains(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v:
        raise ValueError("expected a non-empty list of domain names")
    out: list[str] = []
    for d in v:
        d = parse_domain(d)
        if d not in out:
            out.append(d)
    return tuple(out)


def _mode(v: Any) -> str:
    if v not in ("server", "capture"):
        raise ValueError(f"expected \"server\" or \"capture\", got {v!r}")
    return v


def _regex(v: Any) -> str:
    """A Python regular expression, compiled once here so that a bad one is refused at start."""
    s = _str(v)
    try:
        re.compile(s)
    except re.error as e:
        raise ValueError(f"not a valid regular expression: {e}") from None
    return s


def _score(v: Any) -> float:
    """A SpamAssassin score: a number, 0 or more (0: never refuse)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ValueError(f"expected a score (a number, 0 or more), got {v!r}")
    return float(v)


def _str_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"expected a list of strings, got {v!r}")
    return v


def _tag_rules(v: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``[{query = "…", tags = ["…"]}]``: a query (Mailpit's search syntax, capture/search.py) and its tags."""
    if not isinstance(v, list):
        raise ValueError("expected a list of {query = \"…\", tags = [\"…\"]} tables")
    out = []
    for i, rule in enumerate(v):
        if not isinstance(rule, dict) or set(rule) != {"query", "tags"}:
            raise ValueError(f"rule {i + 1}: expected exactly the keys query and tags")
        query, tags = _str(rule["query"]).strip(), [t.strip() for t in _str_list(rule["tags"]) if t.strip()]
        if not query or not tags:
            raise ValueError(f"rule {i + 1}: an empty query or no tag")
        out.append((query, tuple(tags)))
    return tuple(out)


_ORIGIN = re.compile(r"^(https?)://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?$")


def _origins(v: Any) -> tuple[str, ...]:
    """Web origins as browsers send them (RFC 6454 §6.1: scheme "://" host [":" port], no path), or "*"."""
    out = []
    for o in _str_list(v):
        o = o.strip().rstrip("/").lower()
        if o != "*" and not _ORIGIN.match(o):
            raise ValueError(f"bad origin {o!r} (expected scheme://host[:port], e.g. http://localhost:3000, or *)")
        out.append(o)
    return tuple(out)


def _hosts(v: Any) -> tuple[str, ...]:
    """Host names or IP addresses (no port), or "*" for any."""
    out = []
    for h in _str_list(v):
        h = h.strip().rstrip(".").lower()
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        if h != "*":
            try:
                h = str(ipaddress.ip_address(h))
            except ValueError:
                h = parse_domain(h)
        out.append(h)
    return tuple(out)


def _optional_hostport(v: Any) -> HostPort | None:
    return parse_hostport(v) if _str(v).strip() else None


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
        raise ValueError(f"bad port {v!r} (1-65535)")
    return v


def _user_name(v: Any) -> str:
    """A system account name (POSIX portable characters); whether it exists is checked at start, not here."""
    s = _str(v).strip()
    if s and not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$", s):
        raise ValueError(f"bad user name {s!r}")
    return s


@_relative
def _path(v: Any, base: Path) -> Path:
    p = Path(os.path.expanduser(_str(v)))
    return p if p.is_absolute() else base / p


@_relative
def _dkim_keys(v: Any, base: Path) -> dict[str, Path]:
    """`domain = "path/to/key.pem"` entries; a bad one is reported as `dkim.keys.<domain>`."""
    if not isinstance(v, dict):
        raise ValueError("expected a table")
    keys = {}
    for dom, p in v.items():
        try:
            keys[parse_domain(dom)] = _path(p, base)
        except ValueError as e:
            raise _SubkeyError(dom, str(e)) from None
    return keys


@_relative
def _ca_file(v: Any, base: Path) -> Path:
    """A PEM file of CA certificates that OpenSSL can load (checked here so a bad one stops the start in one line)."""
    p = _path(v, base)
    if not os.access(p, os.R_OK):
        raise ValueError(f"cannot read {p}")
    import ssl  # here: every process reads the config, the disk-writer child included, and needs no TLS (5 MiB)

    try:
        ssl.create_default_context().load_verify_locations(cafile=str(p))
    except ssl.SSLError as e:
        raise ValueError(f"{p} holds no PEM CA certificate ({e.reason or e})") from None
    return p


# --------------------------------------------------------------------------- sections

LISTENER_NAMES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "managesieve", "http")


def _listen(port: int, role: str) -> Any:
    return setting((HostPort("127.0.0.1", port),), parse=_listeners, doc=role)


@dataclass(frozen=True)
class ListenConfig:
    """Where each listener binds; an empty tuple disables it. Defaults: loopback, standard port + 1000."""

    smtp: tuple[HostPort, ...] = _listen(1025, "MX role")
    submission: tuple[HostPort, ...] = _listen(1587, "MSA with STARTTLS (RFC 6409)")
    submissions: tuple[HostPort, ...] = _listen(1465, "MSA with implicit TLS (RFC 8314)")
    pop3: tuple[HostPort, ...] = _listen(1110, "POP3 with STLS")
    pop3s: tuple[HostPort, ...] = _listen(1995, "POP3 over TLS")
    imap: tuple[HostPort, ...] = _listen(1143, "IMAP with STARTTLS")
    imaps: tuple[HostPort, ...] = _listen(1993, "IMAP over TLS")
    managesieve: tuple[HostPort, ...] = _listen(5190, "ManageSieve with STARTTLS (RFC 5804; standard 4190 + 1000)")
    http: tuple[HostPort, ...] = _listen(8025, "web UI + JSON API")


@dataclass(frozen=True)
class CertPair:
    """A certificate chain and its private key (PEM files)."""

    cert: Path
    key: Path


def parse_sni_name(value: Any) -> str:
    """A name clients send in SNI (RFC 6066 §3): a host name, or ``*.`` + one, matching exactly one more label."""
    if not isinstance(value, str):
        raise ValueError(f"bad server name {value!r}")
    if value.startswith("*."):
        return "*." + parse_domain(value[2:])
    return parse_domain(value)


@_relative
def _tls_domains(v: Any, base: Path) -> dict[str, CertPair]:
    """``[tls.domains."example.org"]`` tables, each with ``cert`` and ``key``; reported as ``tls.domains.<name>``."""
    if not isinstance(v, dict):
        raise ValueError("expected tables: [tls.domains.\"example.org\"] with cert and key")
    out: dict[str, CertPair] = {}
    for name, table in v.items():
        try:
            sni = parse_sni_name(name)
            if not isinstance(table, dict):
                raise ValueError("expected a table with cert and key")
            unknown = set(table) - {"cert", "key"}
            if unknown:
                raise ValueError(f"unknown key {sorted(unknown)[0]!r} (cert and key only)")
            if "cert" not in table or "key" not in table:
                raise ValueError("cert and key must be given together")
            pair = CertPair(_path(table["cert"], base), _path(table["key"], base))
        except ValueError as e:
            raise _SubkeyError(name, str(e)) from None
        out[sni] = pair
    return out


@dataclass(frozen=True)
class TLSConfig:
    cert: Path | None = _live(None, parse=_path, doc="PEM certificate chain; with `key`, or neither")
    key: Path | None = _live(None, parse=_path, doc="PEM private key; with `cert`, or neither")
    domains: Mapping[str, CertPair] = _live(
        factory=dict, parse=_tls_domains,
        doc="server name (SNI) = {cert, key}: the pair shown to clients asking for that name (tlsutil.CertSet)")


def _check_tls(tls: TLSConfig, file: str | None) -> None:
    if (tls.cert is None) != (tls.key is None):
        raise ConfigError(file, "tls.cert" if tls.cert is None else "tls.key", "cert and key must be given together")
    for k in ("cert", "key"):
        p = getattr(tls, k)
        if p is not None and not os.access(p, os.R_OK):
            raise ConfigError(file, f"tls.{k}", f"cannot read {p}")
    for name, pair in tls.domains.items():
        for k in ("cert", "key"):
            p = getattr(pair, k)
            if not os.access(p, os.R_OK):
                raise ConfigError(file, f"tls.domains.{name}.{k}", f"cannot read {p}")


@dataclass(frozen=True)
class LimitsConfig:
    max_message_size: int = _live(26_214_400, parse=_int(1), doc="octets; SIZE and IMAP APPENDLIMIT")
    max_recipients: int = _live(100, parse=_int(1), doc="per transaction")
    max_connections: int = _live(10_000, parse=_int(1), doc="connections at once, per protocol")
    max_connections_per_ip: int = _live(200, parse=_int(1), doc="per client and per protocol")
    auth_failures_per_ip: int = setting(10, parse=_int(1), doc="failed logins per 5 minutes from one client")
    idle_timeout: float = _live(300.0, parse=parse_duration, doc="between commands")
    data_timeout: float = _live(600.0, parse=parse_duration, doc="without progress during DATA/BDAT")
    max_errors: int = _live(10, parse=_int(1), doc="error replies in one session before 421")
    ipv6_prefix: int = setting(64, parse=_int_range(1, 128),
                               doc="per-client limits count an IPv6 client by this network prefix (net/limits.py)")
    max_junk_commands: int = _live(100, parse=_int(1),
                                     doc="SMTP commands that move no mail (EHLO, NOOP, RSET…) per session before 421")


@dataclass(frozen=True)
class DeliveryConfig:
    nameservers: tuple[HostPort, ...] = setting((), parse=_nameservers, doc="DNS servers; empty: the system's")
    mx_port: int = setting(25, parse=_port, doc="port of remote MX hosts")
    smarthost: HostPort | None = setting(None, parse=_smarthost, doc="relay everything through it")
    smarthost_user: str | None = setting(None, parse=_str, doc="AUTH user for the smarthost")
    smarthost_password: str | None = setting(None, parse=_str, doc="AUTH password for the smarthost")
    retry_first: float = setting(300.0, parse=parse_duration, doc="first retry; doubling after that")
    retry_max: float = setting(4 * 3600.0, parse=parse_duration, doc="longest wait between retries")
    max_lifetime: float = setting(5 * 86400.0, parse=parse_duration, doc="then the message bounces")
    delay_notice: float = setting(4 * 3600.0, parse=parse_duration, doc="one delay DSN after this long")
    concurrency_per_destination: int = setting(4, parse=_int(1), doc="parallel connections per destination")
    connect_timeout: float = setting(30.0, parse=parse_duration, doc="TCP connect timeout per MX host")
    # outbound TLS policy (courrier/delivery/tlspolicy.py)
    mta_sts: bool = setting(True, parse=_bool, doc="RFC 8461 policy fetch and enforcement for outbound mail")
    dane: bool = setting(True, parse=_bool, doc="RFC 7672 when the resolver's TLSA answer carries the AD bit")
    mta_sts_port: int = setting(443, parse=_port, doc="port of the MTA-STS policy fetch")
    tls_ca_file: Path | None = setting(None, parse=_ca_file,
                                       doc="extra trusted CAs: MTA-STS policy hosts and MX certificates under it")


@dataclass(frozen=True)
class DKIMConfig:
    selector: str = _live("courrier", parse=_str, doc="default selector for `courrier dkim keygen`")
    keys: Mapping[str, Path] = _live(factory=dict, parse=_dkim_keys, doc="domain = key file, besides data_dir/dkim")


@dataclass(frozen=True)
class CaptureConfig:
    max_messages: int = setting(500, parse=_int(0), doc="retention by count (0: unlimited)")
    max_age: float | None = setting(None, parse=parse_duration, doc="retention by age")
    accept_any_auth: bool = setting(True, parse=_bool, doc="AUTH succeeds with any credentials")
    fail_by_address: bool = setting(False, parse=_bool, doc="tempfail…@, permfail…@, timeout…@, disconnect…@")
    release_allowed: str = setting("", parse=_regex,
                                   doc="regex a release recipient's bare address must match (re.search); \"\" = any")
    chaos: bool = setting(False, parse=_bool, doc="GET|PUT /api/v1/chaos: Mailpit's random SMTP failures")
    link_check_internal: bool = setting(False, parse=_bool,
                                        doc="link check may fetch private, loopback and link-local addresses")
    spamassassin: HostPort | None = setting(None, parse=_optional_hostport,
                                            doc="\"HOST:PORT\" of a spamd: enables /api/v1/message/{ID}/sa-check")
    # Mailpit's settings (its flags in parentheses; `courrier mailpit` maps them, docs/mailpit.md)
    ignore_duplicate_ids: bool = setting(False, parse=_bool,
                                         doc="a Message-ID already captured is dropped, still with 250 "
                                             "(--ignore-duplicate-ids)")
    tag_rules: tuple[tuple[str, tuple[str, ...]], ...] = setting(
        (), parse=_tag_rules, doc="[{query, tags}]: tags given at arrival to messages matching the query (--tag)")
    tag_username: bool = setting(False, parse=_bool, doc="the SMTP AUTH user name becomes a tag (--tags-username)")
    allowed_recipients: str = setting("", parse=_regex, doc="regex RCPT TO must match, else 550 5.1.0 "
                                                           "(--smtp-allowed-recipients); \"\" = any")


@dataclass(frozen=True)
class AuthConfig:
    checks: bool = setting(True, parse=_bool, doc="SPF, DKIM, DMARC on the MX role")
    dmarc_reject: bool = setting(True, parse=_bool, doc="550 5.7.1 for DMARC failures under p=reject")
    check_timeout: float = setting(5.0, parse=_positive_duration,
                                   doc="seconds for SPF + DKIM + DMARC of one message; past it: temperror, judged on")


@dataclass(frozen=True)
class SubmissionConfig:
    sent_copy: bool = setting(False, parse=_bool, doc="store a copy of each submitted message in Sent")


@dataclass(frozen=True)
class HTTPConfig:
    auth_file: Path | None = setting(None, parse=_path, doc="htpasswd-style file guarding the web UI and API")
    allow_insecure_remote: bool = setting(False, parse=_bool, doc="serve non-loopback clients without TLS/auth")
    webhook_url: str | None = setting(None, parse=_str, doc="POSTed a summary of each captured message")
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = setting(
        (), parse=_networks, doc="reverse proxies whose X-Forwarded-For is believed (auth/proxies.py); empty: none")
    allowed_origins: tuple[str, ...] = setting(
        (), parse=_origins,
        doc="Origins allowed to call the API cross-site (CORS); others refused on state changes (web/guard.py)")
    allowed_hosts: tuple[str, ...] = setting(
        (), parse=_hosts,
        doc="Host values served besides loopback, hostname and listen addresses (\"*\": any); DNS rebinding defence")
    metrics: bool = setting(True, parse=_bool,
                            doc="GET /metrics (Prometheus text), same auth as the API (courrier/web/metrics.py)")


def _zones(v: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_domain(z) for z in _str_list(v)))


def _check_filter(filt: FilterConfig, file: str | None) -> None:
    if filt.reject_score and filt.spamd is None:
        raise ConfigError(file, "filter.reject_score", "needs filter.spamd (the score comes from spamd)")


@dataclass(frozen=True)
class FilterConfig:
    """Inbound filtering on the MX role (courrier/filter): SpamAssassin's spamd and DNS blocklists."""

    spamd: HostPort | None = _live(None, parse=_optional_hostport,
                                     doc="\"HOST:PORT\" of a spamd; \"\": no content scanning")
    reject_score: float = _live(0.0, parse=_score,
                                  doc="> 0: a spamd score at or above it is refused (550 5.7.1) at end of DATA")
    dnsbl: tuple[str, ...] = _live((), parse=_zones,
                                     doc="DNSBL zones (RFC 5782) the client address is looked up in; listed → 554 5.7.1")


@dataclass(frozen=True)
class AccountsConfig:
    default_quota: int = setting(0, parse=parse_size,
                                 doc="storage quota of accounts without their own (octets or K/M/G; 0: none)")


def _backend(v: Any) -> str:
    if v not in ("local", "postgresql"):
        raise ValueError(f'expected "local" or "postgresql", got {v!r}')
    return str(v)


def _dsn(v: Any) -> str:
    v = _str(v)
    if v and not v.startswith(("postgresql://", "postgres://")):
        raise ValueError("expected a postgresql:// URL")
    return v


def _check_store(store: StoreConfig, file: str | None) -> None:
    if store.backend == "postgresql" and not store.dsn:
        raise ConfigError(file, "store.dsn", 'needed with backend = "postgresql"')


@dataclass(frozen=True)
class StoreConfig:
    """Where mail, accounts and the queue live: this data dir, or one PostgreSQL shared by a cluster (docs/cluster.md)."""

    backend: str = setting("local", parse=_backend, doc='"local" (Maildir + SQLite) or "postgresql" (a cluster)')
    dsn: str = setting("", parse=_dsn, doc="postgresql://… ; every node of a cluster names the same database")
    node: str = setting("", parse=_str, doc="this node's name, unique in the cluster (\"\": the hostname)")
    lease: float = setting(20.0, parse=_positive_duration,
                           doc="how long a node's claim on a queued message lasts without renewal (taken over after)")
    pool_size: int = setting(10, parse=_int(1), doc="PostgreSQL connections a node opens at most, all uses together "
                                                   "(mail store, queue, accounts; its notification connection apart)")
    timeout: float = setting(5.0, parse=_positive_duration,
                             doc="connecting and each statement; past it the command gets a 4xx (421/451, NO)")


@dataclass(frozen=True)
class Config:
    hostname: str = setting("localhost", parse=parse_domain, doc="SMTP greeting, Received, authserv-id")
    trust_loopback: bool = setting(True, parse=_bool, doc="loopback clients count as local")
    domains: tuple[str, ...] = setting(("localhost",), parse=_domains, doc="local domains")
    data_dir: Path = setting(Path("courrier-data"), parse=_path, doc="relative to the config file's folder")
    mode: str = setting("server", parse=_mode, doc="\"server\" or \"capture\"")
    listen: ListenConfig = section(ListenConfig)
    tls: TLSConfig = section(TLSConfig, check=_check_tls)
    limits: LimitsConfig = section(LimitsConfig)
    delivery: DeliveryConfig = section(DeliveryConfig)
    dkim: DKIMConfig = section(DKIMConfig)
    capture: CaptureConfig = section(CaptureConfig)
    auth: AuthConfig = section(AuthConfig)
    submission: SubmissionConfig = section(SubmissionConfig)
    http: HTTPConfig = section(HTTPConfig)
    filter: FilterConfig = section(FilterConfig, check=_check_filter)
    accounts: AccountsConfig = section(AccountsConfig)
    store: StoreConfig = section(StoreConfig, check=_check_store)
    user: str = setting("", parse=_user_name,
                        doc="started as root: bind the listeners, then run as this user (courrier/privileges.py)")
    source: str | None = None  # the file this was loaded from, for messages (not a key)
    overrides: tuple[tuple[str, Any], ...] = ()  # command-line flags applied over the file (`load_again` keeps them)

    @property
    def capture_mode(self) -> bool:
        return self.mode == "capture"

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in self.domains

    @property
    def db_path(self) -> Path:
        return self.data_dir / "courrier.db"


# --------------------------------------------------------------------------- loading


def _read(cls: type, table: Mapping[str, Any], file: str | None, prefix: str, base: Path) -> dict[str, Any]:
    """The values of `cls`'s settings found in `table`; a key that is neither a setting nor a section is refused."""
    values: dict[str, Any] = {}
    known = set()
    for f in dataclasses.fields(cls):
        if "section" in f.metadata or "parse" in f.metadata:
            known.add(f.name)
        if "parse" not in f.metadata or f.name not in table:
            continue
        parse = f.metadata["parse"]
        try:
            values[f.name] = parse(table[f.name], base) if getattr(parse, "relative", False) else parse(table[f.name])
        except _SubkeyError as e:
            raise ConfigError(file, f"{prefix}{f.name}.{e.subkey}", str(e)) from None
        except (ValueError, TypeError) as e:
            raise ConfigError(file, f"{prefix}{f.name}", str(e)) from None
    for k in table:
        if k not in known:
            raise ConfigError(file, f"{prefix}{k}", "unknown key")
    return values


def from_mapping(raw: Mapping[str, Any], file: str | None = None, base: Path | None = None) -> Config:
    """Builds a Config from parsed TOML, refusing unknown keys and bad values."""
    base = base or Path.cwd()
    top = _read(Config, raw, file, "", base)
    top.setdefault("data_dir", base / Config.data_dir)  # the default is relative to the file's folder too
    for f in dataclasses.fields(Config):
        if "section" not in f.metadata:
            continue
        table = raw.get(f.name, {})
        if not isinstance(table, dict):
            raise ConfigError(file, f.name, "expected a table")
        value = f.metadata["section"](**_read(f.metadata["section"], table, file, f"{f.name}.", base))
        if f.metadata["check"] is not None:
            f.metadata["check"](value, file)
        top[f.name] = value
    return Config(**top, source=file)


def changed_keys(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """The keys whose values differ between two configurations, as (applied by a reload, needing a restart)."""
    live: list[str] = []
    restart: list[str] = []

    def compare(cls: type, a: Any, b: Any, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if "section" in f.metadata:
                compare(f.metadata["section"], getattr(a, f.name), getattr(b, f.name), f"{f.name}.")
            elif "parse" in f.metadata and getattr(a, f.name) != getattr(b, f.name):
                (live if f.metadata["reload"] else restart).append(prefix + f.name)

    compare(Config, old, new, "")
    return live, restart


def with_values_of(new: Config, running: Config, keys: list[str]) -> Config:
    """``running`` with the values of ``keys`` ("section.key" or "key", as `changed_keys` names them) from ``new``:
    what a reload applies, the other keys keeping their running values until a restart."""
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key in keys:
        sec, _, name = key.rpartition(".")
        if sec:
            sections.setdefault(sec, {})[name] = getattr(getattr(new, sec), name)
        else:
            top[key] = getattr(new, key)
    for sec, values in sections.items():
        top[sec] = dataclasses.replace(getattr(running, sec), **values)
    return dataclasses.replace(running, **top)


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    """``--config`` > ``$COURRIER_CONFIG`` > ``./courrier.toml`` > none."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("COURRIER_CONFIG")
    if env:
        return Path(env)
    local = Path("courrier.toml")
    return local if local.exists() else None


def load(
    config_file: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    capture: bool = False,
) -> Config:
    """Loads the configuration with the documented precedence; raises ConfigError with one line."""
    path = find_config_file(config_file)
    if path is None:
        cfg = from_mapping({})
    else:
        name = str(path)
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(name, None, "no such file") from None
        except PermissionError:
            raise ConfigError(name, None, "permission denied") from None
        except IsADirectoryError:
            raise ConfigError(name, None, "is a directory") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(name, None, f"not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(name, None, e.strerror or str(e)) from None
        cfg = from_mapping(raw, file=name, base=path.resolve().parent)
    changes: dict[str, Any] = {}
    if data_dir is not None:
        changes["data_dir"] = Path(data_dir).resolve()
    if capture:
        changes["mode"] = "capture"
    return dataclasses.replace(cfg, **changes, overrides=tuple(changes.items())) if changes else cfg


def load_again(cfg: Config) -> Config:
    """The configuration read again from the file `cfg` came from, with the same command-line flags (SIGHUP);
    raises ConfigError with one line, like `load`."""
    fresh = load(cfg.source) if cfg.source is not None else from_mapping({})
    changes = dict(cfg.overrides)
    return dataclasses.replace(fresh, **changes, overrides=cfg.overrides) if changes else fresh
