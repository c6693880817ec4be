"""The ``courrier`` command: one click group, one module per command group.

Every command takes ``--config F`` and ``--data DIR`` after its name (see ``common_options``) and reports expected
failures as one line on stderr with exit status 1 — never a traceback. Bad usage exits 2 (click's convention).

Every command runs under umask 0o077 (``PRIVATE_UMASK``): whichever command creates ``data_dir`` or anything in it
first — ``user add`` before the first ``serve``, ``sendmail`` while the server is down, ``dkim keygen`` — the
database (password hashes), mail, spool, keys and captured messages are readable by their owner only, whatever the
umask of the shell, cron job or PHP process that started us.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from courrier import __version__, config


class Fail(click.ClickException):
    """An expected failure: printed as ``courrier: <message>`` and exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"courrier: {self.format_message()}", err=True)


def common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds ``--config`` and ``--data`` to a command and passes a loaded ``cfg`` instead.

    Started as root with ``user`` set, the command runs as that user from here on (courrier/privileges.py), so
    whatever it writes in ``data_dir`` belongs to the server; ``serve`` binds its ports first and drops itself."""

    @click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                  help="Configuration file (default: $COURRIER_CONFIG, then ./courrier.toml).")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                  help="Data directory (overrides data_dir from the configuration).")
    @functools.wraps(f)
    def wrapper(*args: Any, config_file: str | None, data_dir: str | None, **kwargs: Any) -> Any:
        capture = bool(kwargs.pop("capture", False))
        try:
            cfg = config.load(config_file, data_dir=data_dir, capture=capture)
        except config.ConfigError as e:
            raise Fail(f"config error: {e}") from None
        if f.__name__ != "serve":
            from courrier import privileges
            try:
                privileges.as_configured_user(cfg)
            except privileges.PrivilegeError as e:
                raise Fail(str(e)) from None
            except OSError as e:
                raise Fail(f"cannot switch to user {cfg.user}: {e.strerror or e}") from None
        return f(*args, cfg=cfg, **kwargs)

    return wrapper


def read_password(password_stdin: bool, confirm: bool = True) -> str:
    """A password from stdin (first line) or an interactive prompt; never from argv."""
    if password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        pw = line.rstrip("\r\n")
    else:
        pw = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    if not pw:
        raise Fail("empty password")
    return pw


PRIVATE_UMASK = 0o077  # files 0600, directories 0700


# Each command lives in its own module, imported only when that command runs (or for the command list in --help):
# a CLI that starts fast matters for `sendmail` called once per mail by cron or PHP.
COMMAND_MODULES = {
    "serve": "serve", "user": "user", "send": "send", "sendmail": "sendmail", "mx": "mx", "probe": "probe",
    "queue": "queue", "check": "check", "dkim": "dkim", "dns": "dnsrecords", "status": "status",
    "import": "importmail", "backup": "backup", "mailpit": "mailpit", "sieve": "sieve", "migrate": "migrate",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            import importlib

            importlib.import_module(f"courrier.cli.{COMMAND_MODULES[cmd_name]}")  # registers on `main`
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="courrier")
def main() -> None:
    """courrier — a complete, small, readable mail system.

    SMTP (MX and submission), outbound MTA, Maildir, POP3, IMAP, and a capture mode for testing applications.
    """
    os.umask(PRIVATE_UMASK)  # before any command creates a file (see the module docstring)
