"""Accounts: argon2id hashes, aliases, postmaster choice, and the `courrier user` commands."""

import sqlite3

import pytest

from courrier.accounts import AccountError, Accounts
from courrier.mail.path import parse_address
from tests.support import run_cli


@pytest.fixture
def accts(tmp_path):
    return Accounts(tmp_path / "courrier.db")


def test_add_verify_and_hash_format(accts, tmp_path):
    accts.add("Bob@Example.Test", "s3cret")
    assert accts.verify("bob@example.test", "s3cret").address == "bob@example.test"
    assert accts.verify("bob@example.test", "wrong") is None
    assert accts.verify("nobody@example.test", "s3cret") is None
    stored = sqlite3.connect(tmp_path / "courrier.db").execute("SELECT password FROM accounts").fetchone()[0]
    assert stored.startswith("$argon2id$") and "s3cret" not in stored


def test_local_mailbox_resolves_aliases_subaddresses_and_postmaster(accts):
    accts.add("bob@example.test", "a", is_admin=True)
    accts.add_alias("bob@example.test", "robert@example.test")
    found = {a: accts.local_mailbox(parse_address(a)) for a in
             ("Bob@Example.test", "robert+news@example.test", "bob+x@example.test", "POSTMASTER@example.test",
              "nobody@example.test", "nobody+bob@example.test")}
    assert found == {"Bob@Example.test": "bob@example.test", "robert+news@example.test": "bob@example.test",
                     "bob+x@example.test": "bob@example.test", "POSTMASTER@example.test": "bob@example.test",
                     "nobody@example.test": None, "nobody+bob@example.test": None}


def test_duplicates_aliases_postmaster(accts):
    accts.add("bob@example.test", "a")
    with pytest.raises(AccountError, match="already exists"):
        accts.add("BOB@example.test", "b")
    with pytest.raises(AccountError, match="bad address"):
        accts.add("not-an-address", "b")
    accts.add("admin@example.test", "a", is_admin=True)
    assert accts.postmaster() == "admin@example.test"
    accts.add_alias("bob@example.test", "robert@example.test")
    assert accts.resolve("Robert@example.test") == "bob@example.test"
    with pytest.raises(AccountError):
        accts.add_alias("bob@example.test", "admin@example.test")
    accts.del_alias("bob@example.test", "robert@example.test")
    assert accts.resolve("robert@example.test") is None
    accts.delete("bob@example.test")
    with pytest.raises(AccountError, match="no such account"):
        accts.delete("bob@example.test")


def test_migrations_are_numbered_and_applied_once(tmp_path):
    from courrier import db

    files = db.migration_files()
    numbers = [n for n, _, _ in files]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1
    c = db.connect(tmp_path / "x.db")
    db.migrate(c)  # idempotent
    applied = [r[0] for r in c.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == numbers


def test_user_commands(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'domains = ["example.test"]\ndata_dir = "{tmp_path / "d"}"\n')
    run_cli("user", "add", "bob@example.test", "--password-stdin", "--config", str(cfg), input="pw1\n")
    r = run_cli("user", "add", "bob@example.test", "--password-stdin", "--config", str(cfg), input="pw1\n",
                check=False)
    assert r.returncode == 1 and r.stderr.strip() == "courrier: bob@example.test already exists"
    run_cli("user", "alias", "add", "bob@example.test", "bobby@example.test", "--config", str(cfg))
    out = run_cli("user", "list", "--config", str(cfg)).stdout
    assert out.strip() == "bob@example.test  aliases: bobby@example.test  used 0"
    run_cli("user", "passwd", "bob@example.test", "--password-stdin", "--config", str(cfg), input="pw2\n")
    a = Accounts(tmp_path / "d" / "courrier.db")
    assert a.verify("bob@example.test", "pw2") and not a.verify("bob@example.test", "pw1")
    r = run_cli("user", "add", "x@example.test", "--password-stdin", "--config", str(cfg), input="\n", check=False)
    assert r.returncode == 1 and "empty password" in r.stderr
    r = run_cli("user", "add", "--config", str(cfg), check=False)
    assert r.returncode == 2  # usage
    r = run_cli("user", "add", "x@example.test", "secret-on-argv", "--config", str(cfg), check=False)
    assert r.returncode == 2  # no password on the command line, ever
    run_cli("user", "set", "bob@example.test", "--admin", "--send-as-any", "--config", str(cfg))
    assert "[admin, send-as-any]" in run_cli("user", "list", "--config", str(cfg)).stdout
    run_cli("user", "set", "bob@example.test", "--no-send-as-any", "--config", str(cfg))
    assert "[admin]  aliases" in run_cli("user", "list", "--config", str(cfg)).stdout
    assert run_cli("user", "set", "bob@example.test", "--config", str(cfg), check=False).returncode == 2
    run_cli("user", "del", "bob@example.test", "--config", str(cfg))
    assert run_cli("user", "list", "--config", str(cfg)).stdout == ""


@pytest.mark.parametrize("cmd", [["--help"], ["serve", "--help"], ["user", "--help"], ["user", "add", "--help"],
                                 ["user", "alias", "add", "--help"]])
def test_help_everywhere(cmd):
    r = run_cli(*cmd)
    assert "Usage:" in r.stdout


def test_resolve_cache_sees_changes_from_other_processes(tmp_path):
    import time

    server_side = Accounts(tmp_path / "courrier.db")
    cli_side = Accounts(tmp_path / "courrier.db")
    assert server_side.resolve("late@example.test") is None
    cli_side.add("late@example.test", "pw")
    deadline = time.time() + 5
    while server_side.resolve("late@example.test") is None and time.time() < deadline:
        time.sleep(0.05)
    assert server_side.resolve("late@example.test") == "late@example.test"
    cli_side.delete("late@example.test")
    deadline = time.time() + 5
    while server_side.resolve("late@example.test") is not None and time.time() < deadline:
        time.sleep(0.05)
    assert server_side.resolve("late@example.test") is None
