"""``courrier user add|del|list|passwd`` and ``user alias add|del``: accounts in ``data_dir/courrier.db``."""

from __future__ import annotations

import click

from courrier.accounts import AccountError, Accounts
from courrier.cli import Fail, common_options, main, read_password
from courrier.config import Config


def _accounts(cfg: Config) -> Accounts:
    try:
        return Accounts(cfg.db_path)
    except OSError as e:
        raise Fail(f"cannot open {cfg.db_path}: {e.strerror or e}") from None


@main.group()
def user() -> None:
    """Manage mail accounts."""


@user.command("add")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--admin", is_flag=True, help="Administrator: receives postmaster@ mail, sees the inspector.")
@click.option("--send-as-any", is_flag=True, help="May send with any envelope sender and From (trusted relays).")
@common_options
def user_add(cfg: Config, address: str, password_stdin: bool, admin: bool, send_as_any: bool) -> None:
    """Create the account ADDRESS (local@domain)."""
    accts = _accounts(cfg)
    pw = read_password(password_stdin)
    try:
        a = accts.add(address, pw, is_admin=admin, send_as_any=send_as_any)
    except AccountError as e:
        raise Fail(str(e)) from None
    domain = a.address.rpartition("@")[2]
    click.echo(f"added {a.address}")
    if domain not in cfg.domains:
        click.echo(f"note: {domain} is not in `domains` {list(cfg.domains)}; mail to it will not be accepted",
                   err=True)


@user.command("del")
@click.argument("address")
@common_options
def user_del(cfg: Config, address: str) -> None:
    """Delete the account ADDRESS (its Maildir is kept)."""
    try:
        _accounts(cfg).delete(address)
    except AccountError as e:
        raise Fail(str(e)) from None
    click.echo(f"deleted {address.lower()}")


@user.command("list")
@common_options
def user_list(cfg: Config) -> None:
    """List accounts, their aliases and permissions."""
    for a in _accounts(cfg).list():
        flags = [f for f, on in (("admin", a.is_admin), ("send-as-any", a.send_as_any)) if on]
        extra = f"  [{', '.join(flags)}]" if flags else ""
        aliases = f"  aliases: {', '.join(a.aliases)}" if a.aliases else ""
        click.echo(f"{a.address}{extra}{aliases}")


@user.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@common_options
def user_passwd(cfg: Config, address: str, password_stdin: bool) -> None:
    """Change the password of ADDRESS."""
    accts = _accounts(cfg)
    pw = read_password(password_stdin)
    try:
        accts.set_password(address, pw)
    except AccountError as e:
        raise Fail(str(e)) from None
    click.echo(f"password changed for {address.lower()}")


@user.command("set")
@click.argument("address")
@click.option("--admin/--no-admin", default=None, help="Administrator (postmaster@ mail, the inspector).")
@click.option("--send-as-any/--no-send-as-any", default=None,
              help="May send with any envelope sender and From (trusted relays).")
@common_options
def user_set(cfg: Config, address: str, admin: bool | None, send_as_any: bool | None) -> None:
    """Change the permissions of ADDRESS."""
    if admin is None and send_as_any is None:
        raise click.UsageError("nothing to change: give --admin/--no-admin or --send-as-any/--no-send-as-any")
    try:
        _accounts(cfg).set_flags(address, is_admin=admin, send_as_any=send_as_any)
    except AccountError as e:
        raise Fail(str(e)) from None
    click.echo(f"updated {address.lower()}")


@user.group("alias")
def alias() -> None:
    """Extra addresses delivered to an account and allowed as its sender."""


@alias.command("add")
@click.argument("address")
@click.argument("alias_address", metavar="ALIAS")
@common_options
def alias_add(cfg: Config, address: str, alias_address: str) -> None:
    """Deliver ALIAS to ADDRESS and let ADDRESS send as ALIAS."""
    try:
        _accounts(cfg).add_alias(address, alias_address)
    except AccountError as e:
        raise Fail(str(e)) from None
    click.echo(f"alias {alias_address.lower()} → {address.lower()}")


@alias.command("del")
@click.argument("address")
@click.argument("alias_address", metavar="ALIAS")
@common_options
def alias_del(cfg: Config, address: str, alias_address: str) -> None:
    """Remove the alias ALIAS of ADDRESS."""
    try:
        _accounts(cfg).del_alias(address, alias_address)
    except AccountError as e:
        raise Fail(str(e)) from None
    click.echo(f"alias {alias_address.lower()} removed")
