"""``courrier import ADDR SOURCE``: an mbox file, a Maildir or ``imap[s]://USER@HOST[:PORT]`` into an account.

The work is courrier/importer.py; this prints one line per message that could not be imported and a summary, and
exits 0 when every message is there (imported now or before), 1 otherwise. Safe to run again: what is already
there is skipped. Works with the server running (the mailbox index is shared through SQLite, like IMAP APPEND
from another process).
"""

from __future__ import annotations

import imaplib
import sys

import click

from courrier.cli import Fail, common_options, main, read_password
from courrier.config import Config


@main.command("import")
@click.argument("address")
@click.argument("source")
@common_options
def import_mail(cfg: Config, address: str, source: str) -> None:
    """Copy mail into ADDRESS's account from SOURCE: an mbox file, a Maildir, or imap[s]://USER@HOST[:PORT]
    (password on stdin; an @ in USER as %40). Flags and dates are kept; re-running skips what is already there."""
    from courrier.accounts import AccountError
    from courrier.cli.user import _accounts, _mail_store
    from courrier.importer import SourceError, Target, items_from
    from courrier.mailbox.api import FolderError

    try:
        account = _accounts(cfg).get(address)  # the store's accounts: SQLite, or the cluster's PostgreSQL
    except AccountError as e:
        raise Fail(str(e)) from None
    if account is None:
        raise Fail(f"no account {address} (add it with `courrier user add {address}`)")
    password = read_password(True, confirm=False) if source.lower().startswith(("imap://", "imaps://")) else None
    store = _mail_store(cfg)
    try:
        root = store.account_root(account.address)
        store.provision(root)
        target = Target(store, root, cfg.limits.max_message_size)
        counts = {"imported": 0, "present": 0, "failed": 0}
        try:
            for item in items_from(source, password, cfg.limits.max_message_size):
                try:
                    counts[target.add(item)] += 1
                except (ValueError, OSError, FolderError) as e:
                    counts["failed"] += 1
                    click.echo(f"courrier: not imported: {item.label}: {e}", err=True)
        except SourceError as e:
            raise Fail(str(e)) from None
        except (OSError, imaplib.IMAP4.error) as e:
            raise Fail(f"reading {source} failed after {counts['imported']} imported: {e}") from None
        click.echo(f"{counts['imported']} imported, {counts['present']} already there, {counts['failed']} failed "
                   f"(into {account.address})")
    finally:
        store.close()
    if counts["failed"]:
        sys.exit(1)
