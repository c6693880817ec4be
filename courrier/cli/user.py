"""``courrier user add|del|list|passwd|set|quota`` and ``user alias add|del``: accounts in ``data_dir/courrier.db``."""

from __future__ import annotations

import click

from courrier.accounts import AccountError, Accounts
from courrier.cli import Fail, common_options, main, read_password
from courrier.config import Config, format_size, parse_size
from courrier.mailbox.api import MailStore
from courrier.mailbox.store import MaildirStore
from courrier.quota import Quota, Quotas


def _accounts(cfg: Config) -> Accounts:
    if cfg.store.backend == "postgresql":  # a cluster: the accounts every node shares (courrier/cluster)
        from courrier.cluster.accounts import PgAccounts
        from courrier.cluster.pg import migrate

        try:
            migrate(cfg.store.dsn, cfg.store.timeout)
        except OSError as e:
            raise Fail(f"[store] dsn: {e.strerror or e}") from None
        return PgAccounts(cfg.store.dsn, cfg.store.timeout)
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


def _usage_text(q: Quota) -> str:
    """``used 1.2M of 10M (12%)``, or ``used 1.2M`` without a limit."""
    used = f"used {format_size(q.usage.octets)}"
    if not q.limit:
        return used
    return f"{used} of {format_size(q.limit)} ({q.usage.octets * 100 // q.limit}%)"


def _mail_store(cfg: Config) -> MailStore:
    """The configured mail store, for a command: the data dir's Maildirs, or the cluster's PostgreSQL."""
    if cfg.store.backend == "postgresql":
        from courrier.cluster.mailstore import PgMailStore

        return PgMailStore(cfg.store.dsn, node="cli", pool_size=1, timeout=cfg.store.timeout)
    return MaildirStore(cfg.data_dir)


def _quotas(cfg: Config, accts: Accounts) -> tuple[Quotas, MailStore]:
    store = _mail_store(cfg)  # the usage the store keeps
    return Quotas(accts, store, cfg.accounts.default_quota), store


@user.command("list")
@common_options
def user_list(cfg: Config) -> None:
    """List accounts, their aliases, permissions and storage used (of their quota)."""
    accts = _accounts(cfg)
    quotas, store = _quotas(cfg, accts)
    try:
        for a in accts.list():
            flags = [f for f, on in (("admin", a.is_admin), ("send-as-any", a.send_as_any)) if on]
            extra = f"  [{', '.join(flags)}]" if flags else ""
            aliases = f"  aliases: {', '.join(a.aliases)}" if a.aliases else ""
            click.echo(f"{a.address}{extra}{aliases}  {_usage_text(quotas.of(a.address, exact=True))}")
    finally:
        store.close()


@user.command("quota")
@click.argument("address")
@click.argument("size", required=False)
@click.option("--force", is_flag=True, help="Set a limit below what the account already uses.")
@common_options
def user_quota(cfg: Config, address: str, size: str | None, force: bool) -> None:
    """Show or set the storage quota of ADDRESS: SIZE in octets or with K/M/G (×1024), 0 for none, "default" for
    [accounts] default_quota. A limit below the current usage is refused unless --force."""
    accts = _accounts(cfg)
    try:
        account = accts.get(address.strip().lower())
        if account is None:
            raise AccountError(f"no such account: {address.lower()}")
        limit: int | None = None
        if size is not None and size.strip().lower() != "default":
            try:
                limit = parse_size(size)
            except ValueError as e:
                raise Fail(str(e)) from None
        quotas, store = _quotas(cfg, accts)
        try:
            before = quotas.of(account.address, exact=True)
        finally:
            store.close()
        if size is None:
            where = "own" if before.own else "[accounts] default_quota"
            limit_text = f"{format_size(before.limit)} ({before.limit} octets, {where})" if before.limit else \
                f"none ({where})"
            click.echo(f"{account.address}  quota {limit_text}  used {format_size(before.usage.octets)} "
                       f"({before.usage.octets} octets, {before.usage.messages} messages)")
            return
        effective = cfg.accounts.default_quota if limit is None else limit
        if effective and before.usage.octets > effective and not force:
            raise Fail(f"{account.address} already uses {format_size(before.usage.octets)} "
                       f"({before.usage.octets} octets), more than {format_size(effective)}; quota not changed "
                       "(--force sets it anyway)")
        accts.set_quota(account.address, limit)
    except AccountError as e:
        raise Fail(str(e)) from None
    shown = "default" if limit is None else ("none" if limit == 0 else format_size(limit))
    click.echo(f"quota of {account.address}: {shown}")


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
