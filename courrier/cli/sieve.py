"""``courrier sieve list|put|get|activate|del ADDR [NAME] [FILE]``: the accounts' Sieve scripts (the same store
ManageSieve serves). A script that does not parse is refused with its line and reason; nothing is stored."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from courrier.accounts import Accounts
from courrier.cli import Fail, common_options, main
from courrier.config import Config
from courrier.sieve.script import SieveSyntaxError
from courrier.sieve.store import SieveStore, SieveStoreError


def _open(cfg: Config, address: str) -> tuple[SieveStore, str]:
    if cfg.store.backend == "postgresql":  # a cluster: its accounts and the scripts every node runs
        from courrier.cluster.accounts import PgAccounts
        from courrier.cluster.pg import Pool, migrate
        from courrier.cluster.sieve_store import PgSieveStore

        try:
            migrate(cfg.store.dsn, cfg.store.timeout)
            account = PgAccounts(cfg.store.dsn, cfg.store.timeout).get(address)
        except OSError as e:
            raise Fail(f"[store] dsn: {e.strerror or e}") from None
        if account is None:
            raise Fail(f"no account {address.lower()}")
        return PgSieveStore(Pool(cfg.store.dsn, cfg.store.timeout)), account.address
    try:
        accounts = Accounts(cfg.db_path)
        account = accounts.get(address)
        if account is None:
            raise Fail(f"no account {address.lower()}")
        return SieveStore(cfg.db_path), account.address
    except OSError as e:
        raise Fail(f"cannot open {cfg.db_path}: {e.strerror or e}") from None


@main.group()
def sieve() -> None:
    """Manage accounts' Sieve mail filters (RFC 5228); also over ManageSieve."""


@sieve.command("list")
@click.argument("address")
@common_options
def sieve_list(cfg: Config, address: str) -> None:
    """List ADDRESS's scripts; the active one is marked."""
    store, account = _open(cfg, address)
    for s in store.list(account):
        click.echo(f"{s.name}\t{s.size}\t{'active' if s.active else ''}".rstrip())


@sieve.command("put")
@click.argument("address")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--activate", is_flag=True, help="Make it the active script.")
@common_options
def sieve_put(cfg: Config, address: str, name: str, file: str, activate: bool) -> None:
    """Store FILE (- for stdin) as ADDRESS's script NAME, after checking its syntax."""
    store, account = _open(cfg, address)
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as e:
        raise Fail(f"cannot read {file}: {e.strerror or e}") from None
    try:
        store.put(account, name, data.decode("utf-8"))
        if activate:
            store.activate(account, name)
    except UnicodeDecodeError:
        raise Fail(f"{file}: not UTF-8 (RFC 5228 §2.1)") from None
    except SieveSyntaxError as e:
        raise Fail(f"{file}: {e}") from None
    except SieveStoreError as e:
        raise Fail(str(e)) from None
    click.echo(f"stored {name} for {account}" + (" (active)" if activate else ""))


@sieve.command("get")
@click.argument("address")
@click.argument("name")
@common_options
def sieve_get(cfg: Config, address: str, name: str) -> None:
    """Print ADDRESS's script NAME."""
    store, account = _open(cfg, address)
    content = store.get(account, name)
    if content is None:
        raise Fail(f"{account} has no script {name!r}")
    click.echo(content, nl=False)


@sieve.command("activate")
@click.argument("address")
@click.argument("name", default="")
@common_options
def sieve_activate(cfg: Config, address: str, name: str) -> None:
    """Make NAME ADDRESS's active script (no NAME: none is active)."""
    store, account = _open(cfg, address)
    try:
        store.activate(account, name)
    except SieveStoreError as e:
        raise Fail(str(e)) from None
    click.echo(f"active script of {account}: {name or '(none)'}")


@sieve.command("del")
@click.argument("address")
@click.argument("name")
@common_options
def sieve_del(cfg: Config, address: str, name: str) -> None:
    """Delete ADDRESS's script NAME (the active one too)."""
    store, account = _open(cfg, address)
    try:
        store.delete(account, name, force=True)
    except SieveStoreError as e:
        raise Fail(str(e)) from None
    click.echo(f"deleted {name} of {account}")
