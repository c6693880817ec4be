"""Scenario 68: the IMAP server under an attacker's checklist (issue 11 items 8, 10, 12, 13, 14), against a real
`courrier serve`, over raw sockets and imaplib.

- 8: nothing large is read before login: literals, lines and literal counts are bounded by state; a synchronizing
  literal over the bound gets NO without a continuation, a non-synchronizing one BYE (RFC 7888 §4); the server's
  memory does not grow under eight unauthenticated 25 MiB APPENDs.
- 10: nesting is bounded in every parser: 5,000 "(" after NOOP, 5,000 NOTs, a 500-level section path → BAD.
- 12: "[" is an atom character (RFC 3501 §9); FLAGS comes before any FETCH that shows a new keyword (§7.2.6).
- 13: RENAME into one's own child → NO; a login while the database or the mail disk fails → NO [UNAVAILABLE];
  a client that leaves mid-command or mid-literal is one info line, never a traceback.
- 14: new accounts get INBOX, Drafts, Sent, Junk, Trash, Archive with SPECIAL-USE attributes (RFC 6154), subscribed.
"""

from __future__ import annotations

import imaplib
import re
import shutil
import socket
import sqlite3
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.access.clients import PASSWORD, USER, deliver, imap
from tests.access.wire import Wire
from tests.support import Server

PREAUTH_BYTES = 8 << 10  # courrier/access/imap/session.py


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("imap68"), listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    deliver(s, b"Subject: one\n\nfirst\n")
    yield s
    s.stop()


def closed(w: Wire, timeout: float = 5) -> bool:
    """True when the server has closed the connection (EOF or reset)."""
    w.sock.settimeout(timeout)
    try:
        while w.f.read(4096):
            pass
        return True
    except ConnectionResetError:
        return True


# ---------------------------------------------------------------------------- item 8


def test_synchronizing_literal_over_the_preauth_bound_is_refused_without_continuation(srv):
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a LOGIN {%d}\r\n" % (PREAUTH_BYTES + 1))
    reply = w.line()
    assert reply.startswith(b"a NO [TOOBIG]") and b"before authentication" in reply  # no "+ " first
    assert w.status("NOOP") == b"OK"  # the session goes on
    w.send(b"b LOGIN {%d}\r\n" % len(USER))  # a literal within the bound still works (RFC 3501 §4.3)
    assert w.line().startswith(b"+ ")
    w.send(USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    assert w.read_response(b"b")[-1].startswith(b"b OK")
    w.close()


def test_non_synchronizing_literal_over_the_bound_ends_the_connection(srv):
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a APPEND INBOX {26214400+}\r\n")  # the octets would follow at once: nothing is read, the session ends
    assert w.line().startswith(b"* BYE literal too large before authentication")
    assert closed(w)
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a LOGIN {%d+}\r\n" % (PREAUTH_BYTES + 1))  # not only APPEND: any literal before login
    assert w.line().startswith(b"* BYE")
    assert closed(w)


def test_preauth_lines_and_literal_counts_are_bounded_too(srv):
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a LOGIN " + b"x" * PREAUTH_BYTES + b" y\r\n")
    assert w.line().startswith(b"* BYE")
    assert closed(w)
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a ID (" + b"".join(b"{1+}\r\nx " for _ in range(9)) + b")\r\n")  # nine literals: one too many
    assert w.line().startswith(b"* BYE")
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a AUTHENTICATE PLAIN\r\n")
    assert w.line().startswith(b"+")
    w.send(b"A" * (PREAUTH_BYTES * 2) + b"\r\n")  # the SASL continuation line is a pre-auth read too
    assert w.line().startswith(b"* BYE")


def test_after_login_the_larger_bounds_apply_and_literal_count_is_bounded(srv):
    w = Wire(srv.ports["imap"])
    w.cmd("SELECT INBOX")
    big = b"y" * (PREAUTH_BYTES * 4)
    w.send(b"a SEARCH TEXT {%d+}\r\n" % len(big) + big + b"\r\n")
    assert w.read_response(b"a")[-1].startswith(b"a OK")
    w.send(b"b SEARCH" + b"".join(b" TEXT {1+}\r\nx" for _ in range(1001)) + b"\r\n")
    assert w.line().startswith(b"* BYE")  # 1,000 literals is the most one command may carry


def vm_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(key)


def test_eight_unauthenticated_25_mib_appends_do_not_grow_the_server(srv):
    """The audit's attack (+200 MiB before the fix): each client announces a 25 MiB LITERAL+ and sends it."""
    pid = srv.proc.pid
    before = vm_kib(pid, "VmHWM")
    replies: list[bytes] = []

    def attack() -> None:
        s = socket.create_connection(("127.0.0.1", srv.ports["imap"]), timeout=10)
        s.recv(4096)
        s.sendall(b"a APPEND INBOX {26214400+}\r\n")
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(25):
                s.sendall(chunk)
        except OSError:
            pass  # the server has closed: what it did not read, it did not keep
        try:
            replies.append(s.recv(200))
        except OSError:
            replies.append(b"reset")
        s.close()

    threads = [threading.Thread(target=attack) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    growth = vm_kib(pid, "VmHWM") - before
    assert growth < 16 * 1024, f"peak RSS grew by {growth} KiB"
    assert all(r.startswith(b"* BYE") or r in (b"", b"reset") for r in replies), replies
    assert imap(srv).noop()[0] == "OK"  # still serving


# ---------------------------------------------------------------------------- item 10


def test_nesting_is_bounded_in_every_parser(srv):
    w = Wire(srv.ports["imap"])
    assert w.cmd(b"NOOP " + b"(" * 5000)[-1].split()[1] == b"BAD"  # was NO [SERVERBUG] (RecursionError)
    w.cmd("SELECT INBOX")
    assert w.status("SEARCH " + "NOT " * 5000 + "SEEN") == b"BAD"
    assert w.status("SEARCH " + "OR " * 5000 + "SEEN " * 5001) == b"BAD"
    assert w.status("SEARCH " + "OR " * 50 + "SEEN " * 51) == b"OK"  # a long OR chain of a real client
    assert w.status("FETCH 1 BODY.PEEK[" + "1." * 500 + "1]") == b"BAD"
    assert w.status("NOOP") == b"OK"
    log = srv.log()
    assert "Traceback" not in log and "RecursionError" not in log


def test_repetition_in_one_command_costs_once(srv):
    """Sets and item lists an attacker repeats: merged and deduplicated, or refused, never multiplied."""
    w = Wire(srv.ports["imap"])
    w.cmd("SELECT INBOX")
    t = time.monotonic()
    got = w.cmd("UID FETCH " + ",".join(["1:*"] * 100_000) + " (UID)")
    assert got[-1].split()[1] == b"OK" and sum(1 for ln in got if ln.startswith(b"* ")) == 1
    got = w.cmd("FETCH 1 (" + " ".join(["BODY.PEEK[]"] * 5000) + ")")
    assert got[-1].split()[1] == b"OK" and got[0].count(b"BODY[]") == 1  # the same attribute is answered once
    got = w.cmd("FETCH 1 (" + " ".join(f"BODY.PEEK[]<{i}>" for i in range(150)) + ")")
    assert got[-1].split()[1] == b"BAD"  # 150 different attributes: more than one command may ask for
    assert w.status("SEARCH " + ",".join(["1:*"] * 100_000)) == b"OK"
    assert time.monotonic() - t < 5


# ---------------------------------------------------------------------------- item 12


def test_open_bracket_is_an_atom_char_in_flags_and_mailbox_names(srv):
    c = imap(srv)
    assert c.create("a[b")[0] == "OK"
    c.logout()
    w = Wire(srv.ports["imap"])
    assert w.status("SELECT a[b") == b"OK"
    assert any(b'"." a[b\r\n' in ln for ln in w.cmd('LIST "" a[*'))
    assert w.status("APPEND a[b (foo[bar) {12+}\r\nSubject: x\r\n") == b"OK"
    w.cmd("NOOP")
    got = w.cmd("STORE 1 +FLAGS (other[flag \\Seen)")
    assert got[-1].split()[1] == b"OK"
    assert any(b"other[flag" in ln and ln.startswith(b"* 1 FETCH") for ln in got)
    assert w.status("STORE 1 +FLAGS (bad]flag)") == b"BAD"  # "]" is not an ATOM-CHAR


def test_flags_come_before_a_fetch_that_shows_a_new_keyword(srv):
    c = imap(srv)
    c.create("Kw68")
    c.append("Kw68", None, None, b"Subject: k\r\n\r\nk\r\n")
    c.logout()
    a, b = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    a.cmd("SELECT Kw68")
    b.cmd("SELECT Kw68")
    # the session that stores: FLAGS and PERMANENTFLAGS, then the FETCH (RFC 3501 §7.2.6)
    got = a.cmd("STORE 1 +FLAGS ($Fresh)")
    order = [ln[:9] for ln in got if ln.startswith((b"* FLAGS", b"* OK [PER", b"* 1 FETCH"))]
    assert order == [b"* FLAGS (", b"* OK [PER", b"* 1 FETCH"], got
    # another session hears of it with its next command: FLAGS first there too
    a.cmd("STORE 1 +FLAGS ($Second)")
    got = b.wait(lambda seen: any(b"$Second" in ln for ln in seen))
    flags_at = next(i for i, ln in enumerate(got) if ln.startswith(b"* FLAGS") and b"$Second" in ln)
    fetch_at = next(i for i, ln in enumerate(got) if ln.startswith(b"* 1 FETCH") and b"$Second" in ln)
    assert flags_at < fetch_at, got
    a.close()
    b.close()


# ---------------------------------------------------------------------------- item 13


def test_rename_into_its_own_child_is_refused(srv):
    w = Wire(srv.ports["imap"])
    assert w.status("CREATE Parent68.kid") == b"OK"
    for target in ("Parent68.sub", "Parent68.kid.deeper", "INBOX.Parent68.x", "Parent68"):
        got = w.cmd(f"RENAME Parent68 {target}")
        assert got[-1].split()[1] == b"NO", (target, got)
    names = b"".join(w.cmd('LIST "" Parent68*'))
    assert b" Parent68\r\n" in names and b" Parent68.kid\r\n" in names and b"sub" not in names
    assert w.status("RENAME Parent68 Other68") == b"OK"  # a rename elsewhere still works, children included
    assert b" Other68.kid\r\n" in b"".join(w.cmd('LIST "" Other68*'))


def test_clients_that_leave_mid_command_are_one_info_line(srv):
    port = srv.ports["imap"]
    before, mid_before = srv.log().count("imap.disconnect"), srv.log().count("mid-command")

    def login() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.recv(4096)
        s.sendall(f"l LOGIN {USER} {PASSWORD}\r\n".encode())
        buf = b""
        while b"l OK" not in buf:
            buf += s.recv(4096)
        return s

    s = login()  # mid-literal
    s.sendall(b"a APPEND INBOX {1000}\r\n")
    s.recv(100)
    s.sendall(b"Subject: half\r\n")
    s.close()
    s = login()  # mid-line
    s.sendall(b"b SEARCH TEXT hal")
    s.close()
    s = login()  # reset (RST) while a literal is due
    s.sendall(b"c APPEND INBOX {1000+}\r\nSubject")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    s = login()  # during IDLE
    s.sendall(b"d SELECT INBOX\r\ne IDLE\r\n")
    time.sleep(0.2)
    s.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)  # in the SASL exchange
    s.recv(4096)
    s.sendall(b"f AUTHENTICATE PLAIN\r\n")
    s.recv(100)
    s.close()
    s = login()  # while a large response is being written
    s.sendall(b"g SELECT INBOX\r\nh FETCH 1:* (BODY.PEEK[] BODY.PEEK[] BODY.PEEK[] BODY.PEEK[])\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    deadline = time.monotonic() + 10
    while srv.log().count("imap.disconnect") < before + 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # anything logged after a session's last line (an escaped exception) has arrived too
    log = srv.log()
    assert log.count("imap.disconnect") >= before + 6  # (connections of earlier tests may close meanwhile)
    assert log.count("mid-command") >= mid_before + 4  # mid-literal, mid-line, IDLE, SASL; the resets may be either
    assert "Traceback" not in log and " error " not in log, log[-3000:]
    assert imap(srv).noop()[0] == "OK"


@pytest.mark.local_store("a fault of the local mail disk (a file where the Maildir goes); the PostgreSQL store's "
                         "outage gives NO [UNAVAILABLE] in tests/e2e/test_94 and tests/cluster")
def test_login_while_the_mail_disk_fails_is_unavailable(srv):
    carol = "carol@example.test"
    srv.add_user(carol, "pw")
    box = srv.maildir(carol)
    shutil.rmtree(box, ignore_errors=True)
    box.parent.mkdir(parents=True, exist_ok=True)
    box.write_text("not a directory")  # a real filesystem fault: every mkdir/open below it fails (root included)
    w = Wire(srv.ports["imap"], login=False)
    got = w.cmd(f"LOGIN {carol} pw")[-1]
    assert got.startswith(b"t1 NO [UNAVAILABLE]"), got
    box.unlink()
    assert w.status(f"LOGIN {carol} pw") == b"OK"  # the fault gone, the same session logs in
    assert "Traceback" not in srv.wait_log("imap.login_unavailable")


@pytest.mark.local_store("a fault of the SQLite accounts file (a directory in its place); PostgreSQL's outage is "
                         "tests/e2e/test_94's")
def test_login_while_the_database_fails_is_unavailable(tmp_path):
    s = Server(tmp_path, listeners=("imap",))
    s.add_user(USER, PASSWORD)
    with s:
        db = s.data / "courrier.db"
        db.rename(tmp_path / "courrier.db.saved")
        db.mkdir()  # the accounts database cannot be opened (EISDIR), whoever runs the server
        try:
            w = Wire(s.ports["imap"], login=False)
            got = w.cmd(f"LOGIN {USER} {PASSWORD}")[-1]
            assert got.startswith(b"t1 NO [UNAVAILABLE]"), got
        finally:
            db.rmdir()
            (tmp_path / "courrier.db.saved").rename(db)
        assert w.status(f"LOGIN {USER} {PASSWORD}") == b"OK"
        assert "Traceback" not in s.log()


# ---------------------------------------------------------------------------- item 14

DEFAULTS = ("INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive")


def lsub_names(c: imaplib.IMAP4) -> set[str]:
    return {ln.decode().rsplit(" ", 1)[1].strip('"') for ln in c.lsub()[1] if ln}


def test_new_accounts_get_the_default_folders_subscribed(srv):
    dave = "dave@example.test"
    srv.add_user(dave, "pw")
    if srv.store == "local":  # made by `user add`, in Maildir++ form, before any login (PostgreSQL: at the first)
        box = srv.maildir(dave)
        for name in DEFAULTS[1:]:
            assert (box / f".{name}" / "cur").is_dir() and (box / f".{name}" / "maildirfolder").exists()
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login(dave, "pw")
    listing = b"\n".join(c.list()[1])
    attrs = {m.group(2).decode(): set(m.group(1).decode().split())
             for m in re.finditer(rb'\(([^)]*)\) "\." (\S+)', listing)}
    for name in DEFAULTS[1:]:  # RFC 6154 §2 attributes
        assert attrs[name] == {"\\HasNoChildren", f"\\{name}"}, listing
    assert lsub_names(c) == set(DEFAULTS)
    c.unsubscribe("Junk")  # the user's choice is kept at the next login
    c.logout()
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login(dave, "pw")
    assert lsub_names(c) == set(DEFAULTS) - {"Junk"}
    c.logout()


@pytest.mark.local_store("an account as an earlier local version left it (no Maildir++ folders, no subscription "
                         "rows in SQLite); PostgreSQL accounts always get them at the first login (the test above)")
def test_accounts_made_before_get_them_at_first_login(srv):
    erin = "erin@example.test"
    srv.add_user(erin, "pw")
    box = srv.maildir(erin)  # the state an account made by an earlier version is in: no folders, none subscribed
    shutil.rmtree(box, ignore_errors=True)
    with sqlite3.connect(srv.data / "courrier.db") as db:
        db.execute("DELETE FROM mbox_subscriptions WHERE root LIKE ?", ("%/erin",))
    c = imaplib.IMAP4("127.0.0.1", srv.ports["imap"])
    c.login(erin, "pw")
    assert lsub_names(c) == set(DEFAULTS)
    assert all((box / f".{n}" / "cur").is_dir() for n in DEFAULTS[1:])
    c.logout()
