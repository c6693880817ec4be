"""Scenario 14 (files): whatever command creates the data first, under the common umask 022, nothing courrier writes
is readable by another user — data_dir 0700, courrier.db (+ -wal, -shm) 0600, and every file and folder under it
(Maildir files, spool, DKIM keys, the TLS key, captured messages) private (issue 11 item 20)."""

from __future__ import annotations

import imaplib
import os
import smtplib
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.mta_helpers import wait_for
from tests.support import COURRIER, ENV, Server, write_config

MESSAGE = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: private\r\n\r\nhashes inside\r\n"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def courrier(config: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """One CLI command started the way a shell with umask 022 starts it."""
    p = subprocess.run([*COURRIER, *args, "--config", str(config)], input=input, capture_output=True, text=True,
                       env=ENV, timeout=60, preexec_fn=lambda: os.umask(0o022))
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def loose(data: Path) -> list[str]:
    """Everything under ``data`` (itself included) that a group or other user could read, write or enter."""
    out = []
    for p in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        if mode & 0o077 and not p.is_symlink():
            out.append(f"{p.relative_to(data.parent)} {mode:o}")
    return out


def assert_private(data: Path) -> None:
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    db = data / "courrier.db"
    if db.exists():
        for p in (db, db.with_name("courrier.db-wal"), db.with_name("courrier.db-shm")):
            if p.exists():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert loose(data) == []


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "courrier.toml", {"hostname": "mx.example.test", "domains": ["example.test"],
                                                     "data_dir": "data"},
                        {"listen": {k: "" for k in ("smtp", "submission", "submissions", "pop3", "pop3s", "imap",
                                                    "imaps", "http")}})


@pytest.mark.parametrize("first", ["user add", "sendmail", "dkim keygen", "queue list"])
def test_first_command_creates_private_data(config, first):
    if first == "user add":
        courrier(config, "user", "add", "bob@example.test", "--password-stdin", input="secret\n")
    elif first == "sendmail":
        courrier(config, "sendmail", "-i", "bob@example.test", input=MESSAGE.decode())
    elif first == "dkim keygen":
        courrier(config, "dkim", "keygen", "example.test", "--selector", "s1")
    else:
        courrier(config, "queue", "list")
    assert_private(config.parent / "data")


@pytest.mark.local_store("the file modes of the data dir's Maildir, spool, keys and SQLite index: the local layout "
                         "by nature")
def test_serve_first_then_mail_spool_keys_and_index_stay_private(tmp_path):
    s = Server(tmp_path, listeners=("smtp", "imap", "submissions"), domains=("example.test",))
    with umask(0o022):  # serve inherits it, as from a shell
        s.start()
        try:
            courrier(s.config, "user", "add", "bob@example.test", "--password-stdin", input="secret\n")
            with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30) as c:
                c.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
            with imaplib.IMAP4("127.0.0.1", s.ports["imap"]) as c:
                c.login("bob@example.test", "secret")
                wait_for(lambda: c.select("INBOX")[1] != [b"0"], what="the message in INBOX")
                c.fetch("1", "(FLAGS BODY[])")
            courrier(s.config, "dkim", "keygen", "example.test", "--selector", "s2")
        finally:
            s.stop()
    data = s.data
    assert (data / "tls" / "key.pem").exists() and (data / "dkim" / "example.test.s2.key").exists()
    assert any((data / "mail" / "example.test" / "bob").rglob("*,S=*")), "the delivered Maildir file"
    assert_private(data)


def test_capture_mode_files_are_private(tmp_path):
    s = Server(tmp_path, listeners=("smtp",), capture=True)
    with umask(0o022):
        s.start()
        try:
            with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30) as c:
                c.sendmail("alice@example.test", ["anyone@anywhere.test"], MESSAGE)
            wait_for(lambda: any((s.data / "capture").rglob("*,S=*")) or any((s.data / "capture" / "new").iterdir()),
                     what="the captured file")
        finally:
            s.stop()
    assert_private(s.data)


def test_a_database_left_readable_is_tightened(config):
    courrier(config, "user", "add", "bob@example.test", "--password-stdin", input="secret\n")
    db = config.parent / "data" / "courrier.db"
    db.chmod(0o644)  # as an older version left it
    courrier(config, "user", "list")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_database_is_private_without_the_cli_umask(tmp_path):
    """db.connect on its own (a library caller, a test, ``App`` in-process): explicit modes, not the umask."""
    from courrier import db

    with umask(0o022):
        conn = db.connect(tmp_path / "fresh" / "courrier.db")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        try:
            assert_private(tmp_path / "fresh")
            assert (tmp_path / "fresh" / "courrier.db-wal").exists()
        finally:
            conn.close()
