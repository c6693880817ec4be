"""The usage quotas count (issue 15 item 5): kept by the index on every write and expunge, counted at delivery,
never counted twice, and equal to the RFC822.SIZE of the files on disk."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from courrier import db
from courrier.accounts import Accounts
from courrier.mailbox import maildir
from courrier.mailbox.api import MailStore, Usage, crlf_size
from courrier.mailbox.store import MaildirStore
from courrier.quota import Quotas

ACCOUNT = "ann@example.test"
MSG = b"Subject: hello\r\nFrom: a@example.test\r\n\r\nline one\r\nline two\r\n"


def on_disk(root: Path) -> Usage:
    """What the files of every folder of the account hold, counted the way FETCH RFC822.SIZE counts."""
    n = octets = 0
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            for name in files:
                n += 1
                octets += crlf_size(Path(dirpath, name).read_bytes())
    return Usage(n, octets)


@pytest.fixture
def store(tmp_path):
    s = MaildirStore(tmp_path)
    s.provision(s.account_root(ACCOUNT))
    yield s
    s.close()


async def deliver(store: MaildirStore, folder: Path, body: bytes = MSG) -> None:
    await store.deliver([(folder, b"Delivered-To: ann@example.test\n")], lambda: [body], size=len(body))
    await asyncio.sleep(0.05)  # the count is written by the next loop turn's thread job
    for _ in range(100):
        if not store._arrivals:
            break
        await asyncio.sleep(0.01)


def test_the_store_meets_the_interface(store):
    assert isinstance(store, MailStore)


async def test_delivery_counts_before_the_index_looks_and_never_twice(store):
    root = store.account_root(ACCOUNT)
    await deliver(store, root)
    await deliver(store, store.folder_for(ACCOUNT, "Junk"))
    await asyncio.sleep(0.1)
    assert store.usage(root) == on_disk(root)  # counted at delivery: no listing
    store.index.sync(root, force=True)  # the index takes the file in: the delivery's count goes
    assert store.usage(root) == on_disk(root)
    assert store.usage(root, exact=True) == on_disk(root) == Usage(2, on_disk(root).octets)


async def test_append_copy_and_expunge_keep_the_count(store):
    root = store.account_root(ACCOUNT)
    sent = store.folder(root, "Sent")
    store.index.append(sent, MSG)
    store.index.append(root, MSG + b"more\r\n")
    assert store.usage(root) == on_disk(root)
    snap = store.index.sync(root)
    store.index.copy(root, [m.uid for m in snap.messages], sent)
    assert store.usage(root) == on_disk(root) and store.usage(root).messages == 3
    store.index.copy(sent, [m.uid for m in store.index.sync(sent).messages], store.folder(root, "Archive"), move=True)
    assert store.usage(root) == on_disk(root) and store.usage(root).messages == 3
    store.index.expunge(root, [m.uid for m in store.index.sync(root).messages])
    assert store.usage(root) == on_disk(root) and store.usage(root).messages == 2


async def test_files_removed_behind_the_index_are_subtracted_at_the_next_listing(store):
    root = store.account_root(ACCOUNT)
    store.index.append(root, MSG)
    store.index.append(root, MSG)
    victim = next((root / "new").iterdir())
    victim.unlink()
    assert store.usage(root, exact=True) == on_disk(root) == Usage(1, crlf_size(MSG))


async def test_another_account_and_a_deleted_folder_do_not_count(store):
    root = store.account_root(ACCOUNT)
    other = store.account_root("ann2@example.test")
    store.provision(other)
    store.index.append(other, MSG)
    store.index.append(store.folder(root, "Trash"), MSG)
    assert store.usage(root).messages == 1
    store.delete_folder(root, "Trash")
    assert store.usage(root) == Usage(0, 0) and store.usage(other).messages == 1


def test_the_migration_counts_what_an_older_index_holds(tmp_path):
    """A database made before quotas: its indexed folders get their counts from their rows."""
    path = tmp_path / "courrier.db"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)")
    for version, name, sql in db.migration_files():
        if version < 50:
            c.executescript(sql)
            c.execute("INSERT INTO schema_migrations VALUES (?,?,0)", (version, name))
    c.execute("INSERT INTO mbox_folders(path, uidvalidity, uidnext, highestmodseq) VALUES ('mail/example.test/ann',1,3,1)")
    for uid, size in ((1, 100), (2, 250)):
        c.execute("INSERT INTO mbox_messages VALUES (1,?,?,?,'',?,0,1)", (uid, f"b{uid}", f"new/b{uid}", size))
    c.commit()
    c.close()
    store = MaildirStore(tmp_path)
    try:
        assert store.usage(store.account_root(ACCOUNT)) == Usage(2, 350)
    finally:
        store.close()


async def test_quotas_limit_own_default_and_none(store, tmp_path):
    accounts = Accounts(tmp_path / "courrier.db")
    accounts.add(ACCOUNT, "pw")
    quotas = Quotas(accounts, store, default=1000)
    root = store.account_root(ACCOUNT)
    store.index.append(root, MSG)
    q = quotas.of(ACCOUNT)
    assert (q.limit, q.own, q.usage) == (1000, False, Usage(1, crlf_size(MSG)))
    assert not q.full and q.exceeded_by(1000) and not q.exceeded_by(10)
    accounts.set_quota(ACCOUNT, 10)
    assert quotas.limit(ACCOUNT) == (10, True) and quotas.of(ACCOUNT).full
    assert await quotas.refused(ACCOUNT) is not None
    accounts.set_quota(ACCOUNT, 0)  # 0: none, whatever the default
    assert quotas.limit(ACCOUNT) == (0, True) and await quotas.refused(ACCOUNT, 1 << 40) is None
    accounts.set_quota(ACCOUNT, None)
    assert quotas.limit(ACCOUNT) == (1000, False)


def test_maildir_write_names_carry_the_size(tmp_path):
    """Delivery's count for the streaming path reads ``,S=`` (maildir.write_new) instead of the file."""
    from courrier.mailbox.store import _file_size

    p = maildir.write_new(maildir.ensure(tmp_path / "m"), [b"abc\n"])
    assert _file_size(p) == 4 and ",S=4" in p.name


def test_a_count_arriving_after_the_index_took_the_file_in_is_ignored(store):
    """The race an IDLE session runs: delivery's notify makes it list the folder before the count is written."""
    root = store.account_root(ACCOUNT)
    path = maildir.write_new(root, [MSG])
    store.index.sync(root, force=True)  # the session took the file in first
    store.index.arrived([(root, path.name, 999)])  # then delivery's count arrives
    assert store.usage(root) == on_disk(root) == Usage(1, crlf_size(MSG))


def test_a_count_whose_file_vanished_unindexed_is_dropped_in_time(store, monkeypatch):
    root = store.account_root(ACCOUNT)
    store.index.arrived([(root, "1.M1P1Q1.gone,S=10", 10)])
    assert store.usage(root) == Usage(1, 10)
    monkeypatch.setattr("courrier.mailbox.index._ARRIVAL_LANDS", -1.0)
    maildir.write_new(root, [MSG])
    store.index.sync(root, force=True)
    assert store.usage(root) == on_disk(root)
