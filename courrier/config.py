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


# --------------------------------------------------------------------------- sections

LISTENER_NAMES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "http")


@dataclass(frozen=True)
class ListenConfig:
    """Where each listener binds; an empty tuple disables it. Defaults: loopback, standard port + 1000."""

    smtp: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1025),)
    submission: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1587),)
    submissions: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1465),)
    pop3: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1110),)
    pop3s: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1995),)
    imap: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1143),)
    imaps: tuple[HostPort, ...] = (HostPort("127.0.0.1", 1993),)
    http: tuple[HostPort, ...] = (HostPort("127.0.0.1", 8025),)


@dataclass(frozen=True)
class TLSConfig:
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class LimitsConfig:
    max_message_size: int = 26_214_400
    max_recipients: int = 100
    max_connections: int = 10_000
    max_connections_per_ip: int = 200
    auth_failures_per_ip: int = 10
    idle_timeout: float = 300.0
    data_timeout: float = 600.0
    max_errors: int = 10
    ipv6_prefix: int = 64  # per-client limits count an IPv6 client by this network prefix (courrier/net/limits.py)
    max_junk_commands: int = 100  # SMTP commands that move no mail (EHLO, NOOP, RSET…) per session before 421


@dataclass(frozen=True)
class DeliveryConfig:
    nameservers: tuple[HostPort, ...] = ()
    mx_port: int = 25
    smarthost: HostPort | None = None
    smarthost_user: str | None = None
    smarthost_password: str | None = None
    retry_first: float = 300.0
    retry_max: float = 4 * 3600.0
    max_lifetime: float = 5 * 86400.0
    delay_notice: float = 4 * 3600.0
    concurrency_per_destination: int = 4
    connect_timeout: float = 30.0


@dataclass(frozen=True)
class DKIMConfig:
    selector: str = "courrier"
    keys: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class CaptureConfig:
    max_messages: int = 500
    max_age: float | None = None
    accept_any_auth: bool = True
    fail_by_address: bool = False
    release_allowed: str = ""  # regex a release recipient's bare address must match (re.search); "" = any


@dataclass(frozen=True)
class AuthConfig:
    checks: bool = True
    dmarc_reject: bool = True
    check_timeout: float = 5.0  # seconds for SPF + DKIM + DMARC of one message; past it: temperror, judged on


@dataclass(frozen=True)
class SubmissionConfig:
    sent_copy: bool = False


@dataclass(frozen=True)
class HTTPConfig:
    auth_file: Path | None = None
    allow_insecure_remote: bool = False
    webhook_url: str | None = None
    # reverse proxies whose X-Forwarded-For is believed (courrier/auth/proxies.py); empty: none
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Origins ("scheme://host[:port]", or "*") allowed to call the API cross-site (CORS); any other Origin on a
    # state-changing request or on /api/events is refused (web/guard.py).
    allowed_origins: tuple[str, ...] = ()
    # Host header values served besides loopback names/addresses, `hostname` and the listen addresses ("*": any),
    # the DNS-rebinding defence (web/guard.py).
    allowed_hosts: tuple[str, ...] = ()
    metrics: bool = True  # GET /metrics (Prometheus text), same auth as the API (courrier/web/metrics.py)


@dataclass(frozen=True)
class FilterConfig:
    """Inbound filtering on the MX role (courrier/filter): SpamAssassin's spamd and DNS blocklists."""

    spamd: HostPort | None = None  # "HOST:PORT" of a spamd; None ("" in the file): no content scanning
    reject_score: float = 0.0  # > 0: a spamd score at or above it is refused (550 5.7.1) at end of DATA
    dnsbl: tuple[str, ...] = ()  # DNSBL zones (RFC 5782) the client address is looked up in; listed → 554 5.7.1


@dataclass(frozen=True)
class Config:
    hostname: str = "localhost"
    trust_loopback: bool = True
    domains: tuple[str, ...] = ("localhost",)
    data_dir: Path = Path("courrier-data")
    mode: str = "server"
    listen: ListenConfig = field(default_factory=ListenConfig)
    tls: TLSConfig = field(default_factory=TLSConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    dkim: DKIMConfig = field(default_factory=DKIMConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    http: HTTPConfig = field(default_factory=HTTPConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    user: str = ""  # started as root: bind the listeners, then run as this user (courrier/privileges.py)
    source: str | None = None  # the file this was loaded from, for messages

    @property
    def capture_mode(self) -> bool:
        return self.mode == "capture"

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in self.domains

    @property
    def db_path(self) -> Path:
        return self.data_dir / "courrier.db"


# --------------------------------------------------------------------------- loading


class _Reader:
    """Reads one TOML table, remembering which keys were used so unknown ones can be refused."""

    def __init__(self, file: str | None, prefix: str, table: Mapping[str, Any]) -> None:
        self.file, self.prefix, self.table = file, prefix, table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), reason)

    def get(self, name: str, default: Any, conv: Any) -> Any:
        self.used.add(name)
        if name not in self.table:
            return default
        try:
            return conv(self.table[name])
        except (ValueError, TypeError) as e:
            raise self.error(name, str(e)) from None

    def finish(self, allowed_tables: tuple[str, ...] = ()) -> None:
        for k in self.table:
            if k not in self.used and k not in allowed_tables:
                raise self.error(k, "unknown key")


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


def _listeners(default_port: int) -> Any:
    def conv(v: Any) -> tuple[HostPort, ...]:
        items = v if isinstance(v, list) else [v]
        out = []
        for item in items:
            if item == "":
                continue
            out.append(parse_hostport(item))
        return tuple(out)

    return conv


def _nameservers(v: Any) -> tuple[HostPort, ...]:
    items = v if isinstance(v, list) else [v]
    return tuple(parse_hostport(i, default_port=53) for i in items)


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


def _section(raw: Mapping[str, Any], file: str | None, name: str) -> Mapping[str, Any]:
    t = raw.get(name, {})
    if not isinstance(t, dict):
        raise ConfigError(file, name, "expected a table")
    return t


def _path(base: Path) -> Any:
    def conv(v: Any) -> Path:
        p = Path(os.path.expanduser(_str(v)))
        return p if p.is_absolute() else base / p

    return conv


def from_mapping(raw: Mapping[str, Any], file: str | None = None, base: Path | None = None) -> Config:
    """Builds a Config from parsed TOML, refusing unknown keys and bad values."""
    base = base or Path.cwd()
    top = _Reader(file, "", raw)
    d = Config()
    hostname = top.get("hostname", d.hostname, parse_domain)
    trust_loopback = top.get("trust_loopback", d.trust_loopback, _bool)
    domains = top.get("domains", d.domains, _domains)
    data_dir = top.get("data_dir", base / d.data_dir, _path(base))
    mode = top.get("mode", d.mode, _mode)
    user = top.get("user", d.user, _user_name)
    sections = ("listen", "tls", "limits", "delivery", "dkim", "capture", "auth", "submission", "http", "filter")
    top.finish(allowed_tables=sections)

    r = _Reader(file, "listen.", _section(raw, file, "listen"))
    dl = ListenConfig()
    listen = ListenConfig(**{n: r.get(n, getattr(dl, n), _listeners(0)) for n in LISTENER_NAMES})
    r.finish()

    r = _Reader(file, "tls.", _section(raw, file, "tls"))
    tls = TLSConfig(cert=r.get("cert", None, _path(base)), key=r.get("key", None, _path(base)))
    r.finish()
    if (tls.cert is None) != (tls.key is None):
        raise ConfigError(file, "tls.cert" if tls.cert is None else "tls.key", "cert and key must be given together")
    for k in ("cert", "key"):
        p = getattr(tls, k)
        if p is not None and not os.access(p, os.R_OK):
            raise ConfigError(file, f"tls.{k}", f"cannot read {p}")

    r = _Reader(file, "limits.", _section(raw, file, "limits"))
    dlim = LimitsConfig()
    limits = LimitsConfig(
        max_message_size=r.get("max_message_size", dlim.max_message_size, _int(1)),
        max_recipients=r.get("max_recipients", dlim.max_recipients, _int(1)),
        max_connections=r.get("max_connections", dlim.max_connections, _int(1)),
        max_connections_per_ip=r.get("max_connections_per_ip", dlim.max_connections_per_ip, _int(1)),
        auth_failures_per_ip=r.get("auth_failures_per_ip", dlim.auth_failures_per_ip, _int(1)),
        idle_timeout=r.get("idle_timeout", dlim.idle_timeout, parse_duration),
        data_timeout=r.get("data_timeout", dlim.data_timeout, parse_duration),
        max_errors=r.get("max_errors", dlim.max_errors, _int(1)),
        ipv6_prefix=r.get("ipv6_prefix", dlim.ipv6_prefix, _int_range(1, 128)),
        max_junk_commands=r.get("max_junk_commands", dlim.max_junk_commands, _int(1)),
    )
    r.finish()

    r = _Reader(file, "delivery.", _section(raw, file, "delivery"))
    dd = DeliveryConfig()
    delivery = DeliveryConfig(
        nameservers=r.get("nameservers", dd.nameservers, _nameservers),
        mx_port=r.get("mx_port", dd.mx_port, _port),
        smarthost=r.get("smarthost", dd.smarthost, lambda v: parse_hostport(v, default_port=25)),
        smarthost_user=r.get("smarthost_user", None, _str),
        smarthost_password=r.get("smarthost_password", None, _str),
        retry_first=r.get("retry_first", dd.retry_first, parse_duration),
        retry_max=r.get("retry_max", dd.retry_max, parse_duration),
        max_lifetime=r.get("max_lifetime", dd.max_lifetime, parse_duration),
        delay_notice=r.get("delay_notice", dd.delay_notice, parse_duration),
        concurrency_per_destination=r.get("concurrency_per_destination", dd.concurrency_per_destination, _int(1)),
        connect_timeout=r.get("connect_timeout", dd.connect_timeout, parse_duration),
    )
    r.finish()

    dkim_raw = _section(raw, file, "dkim")
    r = _Reader(file, "dkim.", dkim_raw)
    selector = r.get("selector", DKIMConfig().selector, _str)
    keys_raw = r.get("keys", {}, lambda v: v if isinstance(v, dict) else (_ for _ in ()).throw(ValueError("expected a table")))
    r.finish()
    keys = {}
    for dom, p in keys_raw.items():
        try:
            keys[parse_domain(dom)] = _path(base)(p)
        except ValueError as e:
            raise ConfigError(file, f"dkim.keys.{dom}", str(e)) from None
    dkim = DKIMConfig(selector=selector, keys=keys)

    r = _Reader(file, "capture.", _section(raw, file, "capture"))
    dc = CaptureConfig()
    capture = CaptureConfig(
        max_messages=r.get("max_messages", dc.max_messages, _int(0)),
        max_age=r.get("max_age", dc.max_age, parse_duration),
        accept_any_auth=r.get("accept_any_auth", dc.accept_any_auth, _bool),
        fail_by_address=r.get("fail_by_address", dc.fail_by_address, _bool),
        release_allowed=r.get("release_allowed", dc.release_allowed, _regex),
    )
    r.finish()

    r = _Reader(file, "auth.", _section(raw, file, "auth"))
    auth = AuthConfig(checks=r.get("checks", True, _bool), dmarc_reject=r.get("dmarc_reject", True, _bool),
                      check_timeout=r.get("check_timeout", AuthConfig.check_timeout, _positive_duration))
    r.finish()

    r = _Reader(file, "submission.", _section(raw, file, "submission"))
    submission = SubmissionConfig(sent_copy=r.get("sent_copy", False, _bool))
    r.finish()

    r = _Reader(file, "http.", _section(raw, file, "http"))
    http = HTTPConfig(
        auth_file=r.get("auth_file", None, _path(base)),
        allow_insecure_remote=r.get("allow_insecure_remote", False, _bool),
        webhook_url=r.get("webhook_url", None, _str),
        trusted_proxies=r.get("trusted_proxies", (), _networks),
        allowed_origins=r.get("allowed_origins", (), _origins),
        allowed_hosts=r.get("allowed_hosts", (), _hosts),
        metrics=r.get("metrics", True, _bool),
    )
    r.finish()

    r = _Reader(file, "filter.", _section(raw, file, "filter"))
    filt = FilterConfig(
        spamd=r.get("spamd", None, lambda v: parse_hostport(v) if _str(v).strip() else None),
        reject_score=r.get("reject_score", 0.0, _score),
        dnsbl=r.get("dnsbl", (), lambda v: tuple(dict.fromkeys(parse_domain(z) for z in _str_list(v)))),
    )
    r.finish()
    if filt.reject_score and filt.spamd is None:
        raise ConfigError(file, "filter.reject_score", "needs filter.spamd (the score comes from spamd)")

    return Config(
        hostname=hostname, trust_loopback=trust_loopback, domains=domains, data_dir=data_dir, mode=mode,
        listen=listen, tls=tls, limits=limits, delivery=delivery, dkim=dkim, capture=capture, auth=auth,
        submission=submission, http=http, filter=filt, user=user, source=file,
    )


def _user_name(v: Any) -> str:
    """A system account name (POSIX portable characters); whether it exists is checked at start, not here."""
    s = _str(v).strip()
    if s and not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$", s):
        raise ValueError(f"bad user name {s!r}")
    return s


def _score(v: Any) -> float:
    """A SpamAssassin score: a number, 0 or more (0: never refuse)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ValueError(f"expected a score (a number, 0 or more), got {v!r}")
    return float(v)


def _regex(v: Any) -> str:
    """A Python regular expression, compiled once here so that a bad one is refused at start."""
    s = _str(v)
    try:
        re.compile(s)
    except re.error as e:
        raise ValueError(f"not a valid regular expression: {e}") from None
    return s


def _str_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"expected a list of strings, got {v!r}")
    return v


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


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
        raise ValueError(f"bad port {v!r} (1-65535)")
    return v


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
    return dataclasses.replace(cfg, **changes) if changes else cfg
