"""Scenario 55: RFC 3501 rules that involve more than one session, checked on the wire against `courrier serve`:
the UID ↔ sequence-number mapping across EXPUNGE (§2.3.1, §7.4.1), \\Recent (§2.3.2, §6.3.2), flags that two
sessions change at once (§6.4.6), EXPUNGE of what is \\Deleted *now* (§6.4.3), UID ranges past the end (§6.4.8),
and keywords announced in FLAGS (§7.2.6)."""

from __future__ import annotations

import re

import pytest

from tests.access.clients import PASSWORD, USER, deliver, imap
from tests.access.wire import Wire


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("imap55"), listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    yield s
    s.stop()


def fresh_box(srv, name: str, n: int) -> None:
    """A mailbox ``name`` holding n messages "m1".."mn" (APPENDed with imaplib)."""
    c = imap(srv)
    assert c.create(name)[0] == "OK"
    for i in range(1, n + 1):
        assert c.append(name, None, None, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())[0] == "OK"
    c.logout()


def uids_by_seq(w: Wire) -> list[int]:
    lines = w.cmd("FETCH 1:* (UID)")
    return [int(re.search(rb"UID (\d+)", ln).group(1)) for ln in lines if ln.startswith(b"* ") and b" FETCH " in ln]


def test_sequence_numbers_follow_expunges_seen_by_another_session(srv):
    fresh_box(srv, "Seq", 5)
    a, b = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    a.cmd("SELECT Seq")
    b.cmd("SELECT Seq")
    assert uids_by_seq(a) == uids_by_seq(b) == [1, 2, 3, 4, 5]
    assert a.status("STORE 2,4 +FLAGS.SILENT (\\Deleted)") == b"OK"
    got = a.cmd("EXPUNGE")
    assert a.untagged(got, b"EXPUNGE") == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]  # each number valid when sent
    assert uids_by_seq(a) == [1, 3, 5]
    # B has not been told: during FETCH (§7.4.1) its sequence numbers still mean its old view
    got = b.cmd("FETCH 3 (UID)")
    assert not b.untagged(got, b"EXPUNGE") and b.untagged(got, b"FETCH") == [b"* 3 FETCH (UID 3)\r\n"]
    got = b.cmd("FETCH 2 (UID BODY.PEEK[])")  # expunged, still numbered by the client: no error (RFC 2180 §4.1)
    assert got[-1].split()[1] == b"OK" and not b.untagged(got, b"EXPUNGE")
    got = b.cmd("NOOP")
    assert b.untagged(got, b"EXPUNGE") == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
    assert uids_by_seq(b) == [1, 3, 5]
    # §6.4.8: a UID range past the highest UID still includes the last message; a sequence range too (5:* = 3:5)
    assert b.untagged(b.cmd("UID FETCH 9:* (FLAGS)"), b"FETCH") == [b"* 3 FETCH (UID 5 FLAGS ())\r\n"]
    assert b.cmd("SEARCH 5:*")[0] == b"* SEARCH 3\r\n"
    assert b.cmd("SEARCH 2:*")[0] == b"* SEARCH 2 3\r\n"
    assert b.cmd("UID SEARCH *")[0] == b"* SEARCH 5\r\n"
    assert b.cmd("FETCH 4 (UID)")[-1].split()[1] == b"BAD"  # beyond the view, without "*"
    # a new message after the expunge gets a new UID (never reused: §2.3.1.1)
    c = imap(srv)
    typ, data = c.append("Seq", None, None, b"Subject: m6\r\n\r\nbody\r\n")
    assert typ == "OK" and data[0].split()[2] == b"6]"
    c.logout()
    b.wait(lambda seen: b"* 4 EXISTS\r\n" in seen)
    assert uids_by_seq(b) == [1, 3, 5, 6]
    a.close()
    b.close()


def test_recent_belongs_to_the_first_session_and_examine_does_not_take_it(srv):
    fresh_box(srv, "Rec", 0)
    peek = Wire(srv.ports["imap"])
    peek.cmd("EXAMINE Rec")
    c = imap(srv)
    c.append("Rec", None, None, b"Subject: r1\r\n\r\nx\r\n")
    c.logout()
    got = peek.wait(lambda seen: b"* 1 EXISTS\r\n" in seen)
    assert b"* 1 RECENT\r\n" in got  # EXAMINE sees \Recent ...
    assert peek.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    st = peek.cmd("STATUS Rec (RECENT MESSAGES)")[0]
    assert st == b"* STATUS Rec (RECENT 1 MESSAGES 1)\r\n"  # ... without claiming it (§6.3.2)
    first, second = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    assert b"* 1 RECENT\r\n" in first.cmd("SELECT Rec")
    assert b"* 0 RECENT\r\n" in second.cmd("SELECT Rec")  # §2.3.2: only one session sees it as recent
    assert first.cmd("SEARCH RECENT")[0] == b"* SEARCH 1\r\n"
    assert second.cmd("SEARCH RECENT")[0] == b"* SEARCH\r\n"
    assert second.cmd("SEARCH NEW")[0] == b"* SEARCH\r\n" and first.cmd("SEARCH NEW")[0] == b"* SEARCH 1\r\n"
    assert first.status("STORE 1 +FLAGS (\\Recent)") == b"BAD"  # §2.3.2: a client cannot set \Recent
    for w in (peek, first, second):
        w.close()


def test_two_sessions_adding_different_flags_both_win(srv):
    fresh_box(srv, "Flags", 2)
    a, b = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    a.cmd("SELECT Flags")
    b.cmd("SELECT Flags")
    a.cmd("STORE 1 +FLAGS.SILENT (\\Seen)")
    # B has not heard of \Seen; its +FLAGS must add to the stored flags, not to its old view (no lost update)
    got = b.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert b"* 1 FETCH (FLAGS (\\Flagged \\Seen))\r\n" in got
    got = a.cmd("FETCH 1 FLAGS")  # A selected first: the messages are \Recent for A (§2.3.2)
    assert got[-2] == b"* 1 FETCH (FLAGS (\\Flagged \\Recent \\Seen))\r\n"  # view refreshed before FETCH runs
    # a .SILENT store still tells what another session changed meanwhile (§5.2), and adds to it
    a.cmd("STORE 2 +FLAGS.SILENT (\\Answered)")
    got = b.cmd("STORE 2 +FLAGS.SILENT (\\Draft)")
    assert b.untagged(got, b"FETCH") == [b"* 2 FETCH (UID 2 FLAGS (\\Answered))\r\n"]
    assert b.cmd("FETCH 2 FLAGS")[0] == b"* 2 FETCH (FLAGS (\\Answered \\Draft))\r\n"
    # RFC 3501 §9: flags may also be given without parentheses
    assert a.status("STORE 2 -FLAGS.SILENT \\Answered \\Draft") == b"OK"
    assert a.cmd("FETCH 2 FLAGS")[0] == b"* 2 FETCH (FLAGS (\\Recent))\r\n"
    assert a.status("STORE 1 +FLAGS (\\Bogus)") == b"BAD"
    assert a.status("STORE 1 +FLAGS (\\*)") == b"BAD"
    a.close()
    b.close()


def test_expunge_removes_what_is_deleted_now(srv):
    fresh_box(srv, "Exp", 2)
    a, b = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    a.cmd("SELECT Exp")
    b.cmd("SELECT Exp")
    a.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    b.cmd("UID STORE 1 -FLAGS.SILENT (\\Deleted)")  # B rescues message 1; A has not heard yet
    got = a.cmd("EXPUNGE")
    assert a.untagged(got, b"EXPUNGE") == [b"* 2 EXPUNGE\r\n"]
    assert uids_by_seq(a) == [1]
    # CLOSE expunges silently (§6.4.2), UID EXPUNGE only within its set (RFC 4315 §2.1)
    c = imap(srv)
    for _ in range(3):
        c.append("Exp", None, None, b"Subject: more\r\n\r\nx\r\n")
    c.logout()
    a.wait(lambda seen: b"* 4 EXISTS\r\n" in seen)
    a.cmd("STORE 2:4 +FLAGS.SILENT (\\Deleted)")
    got = a.cmd("UID EXPUNGE 3")
    assert a.untagged(got, b"EXPUNGE") == [b"* 2 EXPUNGE\r\n"]
    got = a.cmd("CLOSE")
    assert not a.untagged(got, b"EXPUNGE") and got[-1].split()[1] == b"OK"
    assert a.status("FETCH 1 FLAGS") == b"BAD"  # §6.4.2: back in the authenticated state
    assert b"MESSAGES 1" in a.cmd("STATUS Exp (MESSAGES)")[0]
    got = b.cmd("CLOSE")  # B never heard of A's expunges: CLOSE sends no EXPUNGE all the same (§6.4.2)
    assert not b.untagged(got, b"EXPUNGE") and got[-1].split()[1] == b"OK"
    a.close()
    b.close()


def test_new_keyword_is_announced_in_flags_and_permanentflags(srv):
    fresh_box(srv, "Kw", 1)
    a, b = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    got = a.cmd("SELECT Kw")
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n" in got
    assert any(b"[PERMANENTFLAGS (" in ln and b"\\*)" in ln for ln in got)  # keywords may be created
    b.cmd("SELECT Kw")
    a.cmd("STORE 1 +FLAGS.SILENT ($Label1)")
    got = b.wait(lambda seen: any(ln.startswith(b"* FLAGS") for ln in seen))
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Label1)\r\n" in got
    assert b"* 1 FETCH (UID 1 FLAGS ($Label1))\r\n" in got
    got = Wire(srv.ports["imap"]).cmd("EXAMINE Kw")
    assert any(b"$Label1" in ln and ln.startswith(b"* FLAGS") for ln in got)
    assert any(ln.startswith(b"* OK [PERMANENTFLAGS ()]") for ln in got)  # read-only: nothing can change
    a.close()
    b.close()


def test_idle_reports_expunge_and_flag_changes_from_another_session(srv):
    fresh_box(srv, "Idle", 2)
    w, other = Wire(srv.ports["imap"]), Wire(srv.ports["imap"])
    w.cmd("SELECT Idle")
    other.cmd("SELECT Idle")
    w.send(b"i IDLE\r\n")
    assert w.line().startswith(b"+ ")  # RFC 2177 §3
    other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert w.line() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))\r\n"
    other.cmd("EXPUNGE")
    assert w.line() == b"* 1 EXPUNGE\r\n"
    deliver(srv, b"Subject: while idle\r\n\r\nx\r\n")  # INBOX is not the selected mailbox: nothing for Idle
    w.send(b"DONE\r\n")
    assert w.read_response(b"i")[-1].startswith(b"i OK")
    w.send(b"j IDLE\r\n")
    assert w.line().startswith(b"+ ")
    w.send(b"NOT-DONE\r\n")
    assert w.read_response(b"j")[-1].startswith(b"j BAD")
    assert w.status("NOOP") == b"OK"
    w.close()
    other.close()
