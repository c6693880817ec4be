"""``courrier migrate --to postgresql DSN``: copies a local data dir into an empty cluster database.

What goes: accounts and aliases (password hashes as they are: the same passwords log in), every account's folders
with their UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and subscriptions, every message with its UID, flags, internal date
and bytes (so IMAP clients keep their caches: nothing to resync), the outbound queue (schedules, recipients'
states, messages), Sieve scripts with the vacation memory, and the MTA-STS policies fetched. All in one transaction: a failure leaves the database empty, and the command can run again.

The server must be stopped (its data must not change under the copy) and the database must hold no accounts, mail or
queue yet. Then set ``[store] backend = "postgresql"`` and ``dsn`` and start the nodes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import click
import psycopg

from courrier import db
from courrier.cli import Fail, common_options, main
from courrier.cluster.mailstore import store_body
from courrier.cluster.pg import connect, migrate
from courrier.cluster.policies import copy_policies
from courrier.cluster.sieve_store import copy_scripts
from courrier.config import Config
from courrier.mailbox.api import header_end_lf
from courrier.mailbox.store import MaildirStore
from courrier.queue.spool import Spool, SpoolError, envelope_json
from courrier.queue.store import SQLiteQueueStore


class MigrateError(Exception):
    pass


@dataclass
class Copied:
    accounts: int = 0
    aliases: int = 0
    folders: int = 0
    messages: int = 0
    queued: int = 0
    scripts: int = 0


def copy_local(data_dir: Path, dsn: str) -> Copied:
    """Everything of ``data_dir`` into the database ``dsn`` in one transaction (see the module docstring)."""
    migrate(dsn)
    n = Copied()
    local = db.connect(data_dir / "courrier.db")
    store = MaildirStore(data_dir)
    queue = SQLiteQueueStore(data_dir / "courrier.db")
    spool = Spool(data_dir / "queue")
    try:
        with connect(dsn, 60.0, autocommit=False) as pg:
            c = pg.cursor()
            busy = c.execute("SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM mail_folders) + "
                             "(SELECT COUNT(*) FROM queue)").fetchone()[0]
            if busy:
                raise MigrateError("the database is not empty (accounts, mail or queue): migrate needs an empty one")
            for r in local.execute("SELECT address, password, is_admin, send_as_any, created, quota FROM accounts "
                                   "ORDER BY address"):
                c.execute("INSERT INTO accounts(address, password, is_admin, send_as_any, created, quota) "
                          "VALUES (%s,%s,%s,%s,%s,%s)", tuple(r))
                n.accounts += 1
                _copy_mail(pg, c, store, r[0], n)
            for r in local.execute("SELECT alias, address FROM aliases"):
                c.execute("INSERT INTO aliases(alias, address) VALUES (%s,%s)", tuple(r))
                n.aliases += 1
            n.scripts = copy_scripts(local, c)  # the nodes run them from the database (cluster/sieve_store.py)
            copy_policies(local, c)
            top = c.execute("SELECT COALESCE(MAX(uidvalidity), 0) FROM mail_folders").fetchone()[0]
            c.execute("SELECT setval('mail_uidvalidity', GREATEST(%s + 1, nextval('mail_uidvalidity')))", (top,))
            for row in queue.all():
                try:
                    env, message = spool.read(row.qid)
                except (FileNotFoundError, SpoolError):
                    continue  # nothing to send (delivered meanwhile, or quarantined)
                c.execute("INSERT INTO queue (qid, sender, created, size, attempts, next_attempt, last_error, "
                          "delay_notified, envelope, message) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                          (row.qid, row.sender, row.created, row.size, row.attempts, row.next_attempt, row.last_error,
                           row.delay_notified, envelope_json(env), message))
                c.executemany("INSERT INTO queue_rcpt (qid, idx, address, status) VALUES (%s,%s,%s,%s)",
                              [(row.qid, i, a, st) for i, a, st in row.rcpts])
                n.queued += 1
            pg.commit()
    except psycopg.Error as e:
        raise MigrateError(f"migration failed, nothing copied: {str(e).strip()[:300]}") from None
    finally:
        queue.close()
        store.close()
        local.close()
    return n


def _copy_mail(pg: psycopg.Connection, c: psycopg.Cursor, store: MaildirStore, account: str,  # type: ignore[type-arg]
               n: Copied) -> None:
    """One account's folders, subscriptions and messages, with their UIDVALIDITY, UIDs, MODSEQs and flags."""
    root = store.account_root(account)
    if not root.is_dir():
        return
    c.execute("INSERT INTO mail_accounts(account, provisioned) VALUES (%s, true)", (account,))
    for name in store.list_folders(root):
        folder = store.folder(root, name)
        snap = store.index.sync(folder, force=True)
        octets = sum(m.size for m in snap.messages)
        # expunges before the copy are not carried over: QRESYNC clients from before it get every missing UID
        fid = c.execute("INSERT INTO mail_folders(account, name, uidvalidity, uidnext, highestmodseq, messages, octets,"
                        " vanishedfloor, mailboxid) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                        (account, name, snap.uidvalidity, snap.uidnext, snap.highestmodseq, len(snap.messages),
                         octets, snap.highestmodseq, store.mailbox_id(folder))).fetchone()[0]  # RFC 8474 §4 kept
        n.folders += 1
        for m in snap.messages:
            data = store.index.read(folder, m)
            if data is None:  # expunged by another program during the copy: the server is stopped, so rare
                continue
            body = store_body(pg, [data])  # type: ignore[arg-type]
            c.execute("INSERT INTO mail_messages(folder, uid, base, flags, size, internaldate, modseq, hdr_len, "
                      "prefix, body_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                      (fid, m.uid, m.base, sorted(m.flags), m.size, m.internaldate, m.modseq, header_end_lf(data),
                       b"", body.id))
            n.messages += 1
    c.executemany("INSERT INTO mail_subscriptions(account, name) VALUES (%s,%s) ON CONFLICT DO NOTHING",
                  [(account, s) for s in store.index.subscriptions(root)])


@main.command("migrate")
@click.option("--to", "target", type=click.Choice(["postgresql"]), required=True, help="The store to copy into.")
@click.argument("dsn")
@common_options
def migrate_cmd(cfg: Config, target: str, dsn: str) -> None:
    """Copy this data dir's accounts, mail (UIDs, flags) and queue into the empty PostgreSQL database DSN."""
    from courrier import observe

    doc = observe.read_status(cfg.data_dir)
    if doc and "stopped" not in doc and observe.alive(int(doc.get("pid", 0))):
        raise Fail(f"the server on {cfg.data_dir} is running (pid {doc['pid']}): stop it first")
    if not cfg.db_path.exists():
        raise Fail(f"no courrier database in {cfg.data_dir}")
    try:
        n = copy_local(cfg.data_dir, dsn)
    except MigrateError as e:
        raise Fail(str(e)) from None
    except (OSError, sqlite3.Error) as e:
        raise Fail(f"migration failed, nothing copied: {e}") from None
    click.echo(f"copied {n.accounts} accounts, {n.aliases} aliases, {n.folders} folders, {n.messages} messages and "
               f"{n.queued} queued messages into {dsn.rpartition('@')[2]}; now set [store] backend = \"postgresql\" "
               "and dsn, and start the nodes")
