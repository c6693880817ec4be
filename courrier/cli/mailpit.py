"""``courrier mailpit [Mailpit's flags]``: capture mode configured the way Mailpit is, so a compose file or a CI job
switches by changing the command only.

Mailpit's flags (``cmd/root.go``) and its ``MP_*`` environment variables are read into a configuration mapping —
the same one a ``courrier.toml`` gives, checked by ``config.from_mapping`` — and the server runs as ``serve``
does. The environment is read first and flags override it, as Mailpit does. docs/mailpit.md has the table.

What courrier cannot honour is refused, never ignored: an unknown flag, or a known one whose meaning courrier does
not have (``--smtp-auth-file``: Mailpit's own password files), gives exit status 2 and one line on stderr naming
it. Differences kept on purpose: the default binds are 127.0.0.1:1025 and 127.0.0.1:8025 (Mailpit binds every
interface; courrier never does so unless told), and without ``--database`` the data lives in a temporary
directory removed at exit.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from courrier.cli import Fail, main

Raw = dict[str, Any]
TRUE = {"1", "true", "yes", "on", "y"}


def _table(raw: Raw, name: str) -> dict[str, Any]:
    return raw.setdefault(name, {})


def _bind(value: str, flag: str) -> str:
    """Mailpit's ``[ip]:port`` (``:1025`` = every interface, as Go's net.Listen reads it)."""
    if value.startswith("unix:"):
        raise Refused(flag, "Unix sockets are not supported; give an address and port")
    return "0.0.0.0" + value if value.startswith(":") else value


def _database(raw: Raw, value: str) -> None:
    """Mailpit's database file → courrier's data directory: a directory is used as it is, a file path
    (``/data/mailpit.db``) becomes the directory beside it without the suffix (``/data/mailpit``)."""
    p = Path(value).expanduser()
    raw["data_dir"] = str(p if p.is_dir() or not p.suffix else p.with_suffix(""))


def _tags(raw: Raw, value: str) -> None:
    """``--tag 'tag1,tag2=query other=query'`` (Mailpit's ``loadTagsFromArgs``) → ``[capture] tag_rules``."""
    rules = _table(raw, "capture").setdefault("tag_rules", [])
    for arg in shlex.split(value):
        names, sep, query = arg.partition("=")
        if not sep or not query.strip():
            raise Refused("--tag", f"cannot read {arg!r}: expected tag1,tag2=search query")
        rules.append({"query": query.strip().lower(), "tags": [t.strip() for t in names.split(",") if t.strip()]})


def _relay_config(raw: Raw, value: str) -> None:
    """``--smtp-relay-config FILE``: Mailpit's flat YAML (``key: value`` lines) → ``[delivery] smarthost`` and
    friends; a key courrier has no meaning for is refused."""
    try:
        text = Path(value).read_text()
    except OSError as e:
        raise Refused("--smtp-relay-config", f"cannot read {value}: {e.strerror or e}") from None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, v = (x.strip() for x in line.partition(":"))
        _relay_key(raw, key.lower(), v.strip("'\""), "--smtp-relay-config")


def _relay_key(raw: Raw, key: str, v: str, flag: str) -> None:
    d = _table(raw, "delivery")
    if key == "host":
        d["smarthost"] = v + (":" + d["smarthost"].rpartition(":")[2] if ":" in d.get("smarthost", "") else "")
    elif key == "port":
        d["smarthost"] = d.get("smarthost", "localhost").rpartition(":")[0] or d.get("smarthost", "localhost")
        d["smarthost"] = f"{d['smarthost']}:{v}"
    elif key == "username":
        d["smarthost_user"] = v
    elif key == "password":
        d["smarthost_password"] = v
    elif key in ("allowed-recipients", "recipient-allowlist"):
        _table(raw, "capture")["release_allowed"] = v
    elif key == "auth" and v.lower() in ("", "none", "plain", "login"):
        pass  # courrier's smarthost client picks PLAIN or LOGIN when a user name is set
    elif key in ("starttls", "allow-insecure") and v.lower() in ("true", "false", ""):
        pass  # courrier's outbound client always uses STARTTLS when the relay offers it
    else:
        raise Refused(flag, f"relay setting {key!r} is not supported")


class Refused(Exception):
    def __init__(self, flag: str, why: str) -> None:
        super().__init__(f"{flag}: {why}")


@dataclass(frozen=True)
class Flag:
    name: str  # long name without "--"
    env: str | None  # MP_* variable
    value: bool  # takes a value (else a boolean switch)
    apply: Callable[[Raw, str], None] | None  # None: refused
    help: str
    short: str | None = None


def _set(table: str, key: str, conv: Callable[[str], Any] = str) -> Callable[[Raw, str], None]:
    def apply(raw: Raw, v: str) -> None:
        if table:
            _table(raw, table)[key] = conv(v)
        else:
            raw[key] = conv(v)

    return apply


def _int(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"expected an integer, got {v!r}") from None


def _bool(v: str) -> bool:
    return v.strip().lower() in TRUE


def _listen(name: str, flag: str) -> Callable[[Raw, str], None]:
    def apply(raw: Raw, v: str) -> None:
        _table(raw, "listen")[name] = [_bind(v, flag)]

    return apply


def _noop(raw: Raw, v: str) -> None:
    pass


def _log(level: str) -> Callable[[Raw, str], None]:
    def apply(raw: Raw, v: str) -> None:
        if _bool(v):
            raw["__log_level"] = level

    return apply


def flags() -> list[Flag]:
    return [
        Flag("database", "MP_DATABASE", True, _database, "data directory (a file path: the directory beside it)",
             "d"),
        Flag("db-file", "MP_DATA_FILE", True, _database, "deprecated name of --database"),
        Flag("max", "MP_MAX_MESSAGES", True, _set("capture", "max_messages", _int), "messages kept (0: no limit)",
             "m"),
        Flag("max-age", "MP_MAX_AGE", True, _set("capture", "max_age"), "age of messages kept (3d, 12h)"),
        Flag("ignore-duplicate-ids", "MP_IGNORE_DUPLICATE_IDS", False,
             _set("capture", "ignore_duplicate_ids", _bool), "drop a message whose Message-ID is kept already"),
        Flag("quiet", "MP_QUIET", False, _log("error"), "log errors only", "q"),
        Flag("verbose", "MP_VERBOSE", False, _log("debug"), "log everything", "v"),
        Flag("listen", "MP_UI_BIND_ADDR", True, _listen("http", "--listen"), "HTTP address:port of UI and API",
             "l"),
        Flag("ui-auth-file", "MP_UI_AUTH_FILE", True, _set("http", "auth_file"), "htpasswd file for UI and API"),
        Flag("api-cors", "MP_API_CORS", True, lambda raw, v: _table(raw, "http").__setitem__(
            "allowed_origins", [o.strip() for o in v.split(",") if o.strip()]), "origins allowed cross-site"),
        Flag("enable-spamassassin", "MP_ENABLE_SPAMASSASSIN", True, _set("capture", "spamassassin", str),
             "spamd HOST:PORT for sa-check"),
        Flag("smtp", "MP_SMTP_BIND_ADDR", True, _listen("smtp", "--smtp"), "SMTP address:port", "s"),
        Flag("pop3", "MP_POP3_BIND_ADDR", True, _listen("pop3", "--pop3"),
             "POP3 address:port (off unless given; any credentials, as [capture] accept_any_auth)"),
        Flag("smtp-auth-accept-any", "MP_SMTP_AUTH_ACCEPT_ANY", False, _set("capture", "accept_any_auth", _bool),
             "accept any SMTP user name and password (courrier's default)"),
        Flag("smtp-auth-allow-insecure", "MP_SMTP_AUTH_ALLOW_INSECURE", False, _noop,
             "AUTH without TLS (courrier's capture mode allows it with accept-any)"),
        Flag("smtp-max-recipients", "MP_SMTP_MAX_RECIPIENTS", True, _set("limits", "max_recipients", _int),
             "recipients per message"),
        Flag("smtp-allowed-recipients", "MP_SMTP_ALLOWED_RECIPIENTS", True,
             _set("capture", "allowed_recipients"), "regex RCPT TO must match"),
        Flag("smtp-relay-config", "MP_SMTP_RELAY_CONFIG", True, _relay_config, "relay YAML (host, port, …)"),
        Flag("smtp-relay-host", "MP_SMTP_RELAY_HOST", True, lambda raw, v: _relay_key(raw, "host", v, "relay"),
             "relay host for release"),
        Flag("smtp-relay-port", "MP_SMTP_RELAY_PORT", True, lambda raw, v: _relay_key(raw, "port", v, "relay"),
             "relay port"),
        Flag("smtp-relay-username", "MP_SMTP_RELAY_USERNAME", True,
             lambda raw, v: _relay_key(raw, "username", v, "relay"), "relay user name"),
        Flag("smtp-relay-password", "MP_SMTP_RELAY_PASSWORD", True,
             lambda raw, v: _relay_key(raw, "password", v, "relay"), "relay password"),
        Flag("smtp-relay-allowed-recipients", "MP_SMTP_RELAY_ALLOWED_RECIPIENTS", True,
             _set("capture", "release_allowed"), "regex a release recipient must match"),
        Flag("enable-chaos", "MP_ENABLE_CHAOS", False, _set("capture", "chaos", _bool), "the chaos API"),
        Flag("allow-internal-http-requests", "MP_ALLOW_INTERNAL_HTTP_REQUESTS", False,
             _set("capture", "link_check_internal", _bool), "link check may reach private and loopback addresses"),
        Flag("tag", "MP_TAG", True, _tags, "tag new messages: 'tag1,tag2=query …'", "t"),
        Flag("tags-username", "MP_TAGS_USERNAME", False, _set("capture", "tag_username", _bool),
             "tag messages with the SMTP user name"),
        Flag("webhook-url", "MP_WEBHOOK_URL", True, _set("http", "webhook_url"), "POST new messages there"),
        Flag("smtp-disable-rdns", "MP_SMTP_DISABLE_RDNS", False, _noop,
             "no reverse DNS (courrier's capture mode does none)"),
        # known to Mailpit, without a meaning in courrier: refused in one line
        *(Flag(n, e, v, None, "") for n, e, v in (
            ("smtp-auth-file", "MP_SMTP_AUTH_FILE", True), ("smtp-auth", "MP_SMTP_AUTH", True),
            ("ui-auth", "MP_UI_AUTH", True), ("webroot", "MP_WEBROOT", True), ("label", "MP_LABEL", True),
            ("tenant-id", "MP_TENANT_ID", True), ("disable-wal", "MP_DISABLE_WAL", False),
            ("compression", "MP_COMPRESSION", True), ("use-message-dates", "MP_USE_MESSAGE_DATES", False),
            ("log-file", "MP_LOG_FILE", True), ("ui-tls-cert", "MP_UI_TLS_CERT", True),
            ("ui-tls-key", "MP_UI_TLS_KEY", True), ("smtp-tls-cert", "MP_SMTP_TLS_CERT", True),
            ("smtp-tls-key", "MP_SMTP_TLS_KEY", True), ("smtp-require-starttls", "MP_SMTP_REQUIRE_STARTTLS", False),
            ("smtp-require-tls", "MP_SMTP_REQUIRE_TLS", False),
            ("smtp-strict-rfc-headers", "MP_SMTP_STRICT_RFC_HEADERS", False),
            ("block-remote-css-and-fonts", "MP_BLOCK_REMOTE_CSS_AND_FONTS", False),
            ("allow-untrusted-tls", "MP_ALLOW_UNTRUSTED_TLS", False),
            ("disable-http-compression", "MP_DISABLE_HTTP_COMPRESSION", False),
            ("hide-delete-all-button", "MP_HIDE_DELETE_ALL_BUTTON", False),
            ("send-api-auth-file", "MP_SEND_API_AUTH_FILE", True),
            ("send-api-auth-accept-any", "MP_SEND_API_AUTH_ACCEPT_ANY", False),
            ("smtp-relay-all", "MP_SMTP_RELAY_ALL", False), ("smtp-relay-matching", "MP_SMTP_RELAY_MATCHING", True),
            ("smtp-forward-config", "MP_SMTP_FORWARD_CONFIG", True), ("chaos-triggers", "MP_CHAOS_TRIGGERS", True),
            ("pop3-auth-file", "MP_POP3_AUTH_FILE", True),
            ("pop3-tls-cert", "MP_POP3_TLS_CERT", True), ("pop3-tls-key", "MP_POP3_TLS_KEY", True),
            ("tags-config", "MP_TAGS_CONFIG", True), ("tags-title-case", "MP_TAGS_TITLE_CASE", False),
            ("tags-disable", "MP_TAGS_DISABLE", True), ("webhook-limit", "MP_WEBHOOK_LIMIT", True),
        )),
    ]


def _refuse_unsupported(f: Flag, source: str) -> None:
    if f.apply is None:
        raise Refused(source, "is a Mailpit setting courrier does not support (see docs/mailpit.md)")


def parse(argv: list[str], environ: dict[str, str]) -> tuple[Raw, str]:
    """(configuration mapping, log level) for these flags and variables; Refused names the first one that cannot
    be honoured."""
    table = flags()
    by_name = {f.name: f for f in table}
    by_short = {f.short: f for f in table if f.short}
    by_env = {f.env: f for f in table if f.env}
    raw: Raw = {"mode": "capture", "listen": {n: [] for n in ("submission", "submissions", "pop3", "pop3s", "imap",
                                                                  "imaps")}}
    raw["listen"].update(smtp=["127.0.0.1:1025"], http=["127.0.0.1:8025"])
    for var in sorted(k for k in environ if k.startswith("MP_")):
        f = by_env.get(var)
        if f is None:
            raise Refused(var, "unknown Mailpit variable")
        if environ[var] == "" or (not f.value and not _bool(environ[var])):
            continue  # Mailpit reads an empty or false value as unset
        _refuse_unsupported(f, var)
        _apply(f, raw, environ[var], var)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg in ("-", "--"):
            raise Refused(arg, "unexpected argument (courrier mailpit takes flags only)")
        name, eq, value = arg.lstrip("-").partition("=")
        f = by_name.get(name) if arg.startswith("--") else by_short.get(name)
        if f is None:
            raise Refused(arg.partition("=")[0], "unknown flag")
        label = "--" + f.name
        _refuse_unsupported(f, label)
        if f.value and not eq:
            if i + 1 >= len(argv):
                raise Refused(label, "needs a value")
            i += 1
            value = argv[i]
        elif not f.value:
            value = value if eq else "true"
        _apply(f, raw, value, label)
        i += 1
    if any(h != "127.0.0.1" for h in _hosts(raw["listen"]["http"])) and "auth_file" not in raw.get("http", {}):
        # named on the command line, as Mailpit serves it: without a password file, on that address
        _table(raw, "http")["allow_insecure_remote"] = True
    return raw, raw.pop("__log_level", "info")


def _hosts(binds: list[str]) -> list[str]:
    return [b.rpartition(":")[0].strip("[]") for b in binds]


def _apply(f: Flag, raw: Raw, value: str, label: str) -> None:
    assert f.apply is not None
    try:
        f.apply(raw, value)
    except ValueError as e:
        raise Refused(label, str(e)) from None


def usage() -> str:
    lines = ["Usage: courrier mailpit [Mailpit's flags]", "",
             "Capture mode configured as Mailpit is (its flags and MP_* variables; docs/mailpit.md).", "",
             "Flags:"]
    for f in flags():
        if f.apply is None:
            continue
        short = f"-{f.short}, " if f.short else "    "
        name = f"--{f.name}" + (" VALUE" if f.value else "")
        lines.append(f"  {short}{name:<40} {f.help} [{f.env}]")
    lines.append("")
    lines.append("Other Mailpit flags are refused (exit 2), each named on one line.")
    return "\n".join(lines)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def mailpit(args: tuple[str, ...]) -> None:
    """Capture mode started with Mailpit's flags and MP_* variables."""
    if any(a in ("-h", "--help") for a in args):
        click.echo(usage())
        return
    try:
        raw, level = parse(list(args), dict(os.environ))
    except Refused as e:
        click.echo(f"courrier mailpit: {e}", err=True)
        sys.exit(2)
    run(raw, level)


def run(raw: Raw, level: str) -> None:
    from courrier import config, log
    from courrier.app import serve as serve_app
    from courrier.lifecycle import StartupError

    temp = None
    if "data_dir" not in raw:
        temp = tempfile.mkdtemp(prefix="courrier-mailpit-")
        raw["data_dir"] = temp
    try:
        try:
            cfg = config.from_mapping(raw, file="courrier mailpit")
        except config.ConfigError as e:
            raise Fail(f"config error: {e}") from None
        log.setup(level, background=True)
        try:
            serve_app(cfg)
        except StartupError as e:
            raise Fail(str(e)) from None
        except KeyboardInterrupt:
            pass
        finally:
            log.flush()
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
