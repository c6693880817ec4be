"""The mail store's interface (courrier/mailbox/api.py): MaildirStore satisfies it, every caller outside
courrier/mailbox goes through it, and what it promises holds when driven through the interface alone — the contract
a second store (PostgreSQL, the cluster issue) is checked against by adding it to ``STORES``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import courrier
from courrier.mailbox import api
from courrier.mailbox import flags as F
from courrier.mailbox.api import FolderError, FolderIndex, MailStore
from courrier.mailbox.store import MaildirStore

PACKAGE = Path(courrier.__file__).parent


def pg_store(tmp_path: Path):
    """The cluster's PgMailStore on a fresh database of the session's private PostgreSQL (tests/pgcluster.py)."""
    from courrier.cluster.mailstore import PgMailStore
    from courrier.cluster.pg import migrate
    from tests.pgcluster import shared

    dsn = shared().new_database()
    migrate(dsn)
    return PgMailStore(dsn, node="test")


pg_store.__name__ = "PgMailStore"
STORES = [MaildirStore, pg_store]

# Modules of courrier/mailbox that are the Maildir + SQLite implementation: nobody outside the package imports them.
INTERNALS = {"maildir", "folders", "index", "writer", "notify"}
# The implementation itself is named only where the parts are wired together (and by `user add`'s provisioning,
# which runs without a server and so without a store object).
STORE_IMPORTERS = {"app.py", "accounts.py"}


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, as dotted names (``from a import b`` gives ``a.b`` too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _outside_mailbox() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "mailbox" not in p.relative_to(PACKAGE).parts[:1]]


def test_nothing_outside_the_mailbox_package_imports_its_internals():
    bad = []
    for path in _outside_mailbox():
        rel = path.relative_to(PACKAGE)
        for mod in _imports(path):
            parts = mod.split(".")
            if parts[:2] != ["courrier", "mailbox"] or len(parts) < 3:
                continue
            if parts[2] in INTERNALS:
                bad.append(f"{rel}: {mod}")
            elif parts[2] == "store" and str(rel) not in STORE_IMPORTERS and rel.parts[0] != "cli":
                bad.append(f"{rel}: {mod} (use mailbox.api.MailStore; only the composition root builds the store)")
    assert not bad, "mailbox internals imported from outside courrier/mailbox:\n" + "\n".join(bad)


def test_the_import_walk_sees_function_local_and_aliased_imports(tmp_path):
    """The check is not fooled by the forms the code base uses (a guard on the guard)."""
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from courrier.mailbox import maildir as m\n    import courrier.mailbox.index\n")
    assert {"courrier.mailbox.maildir", "courrier.mailbox.index"} <= set(_imports(p))


def _members(proto: type) -> dict[str, object]:
    return {n: v for n, v in vars(proto).items() if not n.startswith("_") and (callable(v) or isinstance(v, property))}


def _shape(fn: object) -> tuple[int, list[str], bool]:
    """(positional parameters, keyword-only names, **kw) of a function."""
    ps = list(inspect.signature(fn).parameters.values())
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in ps)
    return positional, [p.name for p in ps if p.kind == p.KEYWORD_ONLY], any(p.kind == p.VAR_KEYWORD for p in ps)


@pytest.mark.parametrize("impl", STORES)
def test_the_store_satisfies_the_protocols_with_the_same_signatures(tmp_path, impl):
    store = impl(tmp_path)
    try:
        assert isinstance(store, MailStore) and isinstance(store.index, FolderIndex)
        for proto, obj in ((MailStore, store), (FolderIndex, store.index)):
            for name, member in _members(proto).items():
                got = inspect.getattr_static(type(obj), name)
                if isinstance(member, property):
                    assert isinstance(got, property), f"{type(obj).__name__}.{name} should be a property"
                    continue
                # callers pass handles positionally (the implementation may name them `path`); options by keyword
                want, have = _shape(member), _shape(got)
                assert want == have, f"{type(obj).__name__}.{name}: {have} != {want}"
                assert inspect.iscoroutinefunction(member) == inspect.iscoroutinefunction(got), name
    finally:
        store.close()


@pytest.fixture(params=STORES)
def store(request, tmp_path) -> MailStore:
    s = request.param(tmp_path)
    yield s
    s.close()


def _chunks(data: bytes):
    return lambda: iter([data])


async def test_deliver_then_read_back_through_the_interface(store):
    root = store.account_root("bob@example.test")
    await store.run(store.provision, root)
    assert await store.run(store.list_folders, root) == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    inbox, junk = store.folder(root, "INBOX"), store.folder_for("bob@example.test", "Junk")
    assert store.folder_for("bob@example.test", None) == inbox and junk == store.folder(root, "Junk")
    body = b"Subject: hi\r\n\r\nline\r\n"
    await store.deliver([(inbox, b"X-Trace: 1\n"), (junk, b"")], _chunks(body), size=len(body))
    snap = await store.run(store.index.sync, inbox)
    [m] = snap.messages
    assert await store.run(store.index.read, inbox, m) == b"X-Trace: 1\nSubject: hi\n\nline\n"
    assert await store.run(store.index.read_head, inbox, m, 9) == b"X-Trace: "
    assert (await store.run(store.index.header, inbox, m)).endswith(b"Subject: hi\r\n\r\n")
    assert m.size == len(api.to_crlf(b"X-Trace: 1\nSubject: hi\n\nline\n"))
    assert len((await store.run(store.index.sync, junk)).messages) == 1
    await store.run(store.index.subscribe, root, "Junk", False)
    assert "Junk" not in await store.run(store.index.subscriptions, root)


async def test_folders_by_imap_name(store):
    root = store.account_root("carol@example.test")
    await store.run(store.prepare_root, root)
    assert await store.run(store.folder_exists, root, "Sent")
    with pytest.raises(FolderError):
        store.folder(root, "../escape")
    with pytest.raises(ValueError):
        store.account_root("no-at-sign")
    made = await store.run(store.create_folder, root, "Work.2026")
    assert made == store.folder(root, "Work.2026") and await store.run(store.folder_exists, root, "Work")
    uidvalidity, uid = await store.run(store.index.append, made, b"Subject: a\n\nb\n", frozenset({F.SEEN}))
    await store.run(store.rename_folder, root, "Work", "Old")
    assert not await store.run(store.folder_exists, root, "Work.2026")
    moved = await store.run(store.index.sync, store.folder(root, "Old.2026"))
    assert [m.flags for m in moved.messages] == [frozenset({F.SEEN})]
    await store.run(store.delete_folder, root, "Old.2026")
    assert "Old.2026" not in await store.run(store.list_folders, root)
    again = await store.run(store.create_folder, root, "Old.2026")
    assert (await store.run(store.index.sync, again)).uidvalidity > uidvalidity  # RFC 3501 §2.3.1.1


async def test_renaming_inbox_moves_its_messages(store):
    root = store.account_root("dan@example.test")
    await store.run(store.ensure_root, root)
    inbox = store.folder(root, "INBOX")
    await store.run(store.index.append, inbox, b"Subject: a\n\nb\n")
    await store.run(store.rename_folder, root, "INBOX", "Saved")
    assert (await store.run(store.index.sync, inbox)).messages == ()
    assert len((await store.run(store.index.sync, store.folder(root, "Saved"))).messages) == 1


async def test_watchers_are_told_of_changes(store):
    folder = store.folder(store.account_root("erin@example.test"), "INBOX")
    seen = []
    stop = store.subscribe(folder, lambda: seen.append(1))
    store.notify(folder)
    stop()
    store.notify(folder)
    assert seen == [1]
