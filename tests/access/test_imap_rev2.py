"""IMAP4rev2 (RFC 9051) beside IMAP4rev1 and UTF8=ACCEPT (RFC 6855) on the raw protocol over a real listener:
CAPABILITY lists both revisions; after ENABLE IMAP4rev2 no \\Recent, no RECENT, no [UNSEEN], [CLOSED] on
re-SELECT, SEARCH answers ESEARCH; rev1 sessions are unchanged. UTF-8 mailbox names both ways once enabled."""

from __future__ import annotations

import pytest

from courrier.mailbox import maildir
from tests.access.clients import USER
from tests.access.imapsrv import listener
from tests.access.wire import Wire

MSGS = [b"Subject: a\n\none\n", b"Subject: b\n\ntwo\n", b"Subject: c\n\nthree\n"]


@pytest.fixture
def srv(tmp_path):
    with listener(tmp_path, MSGS) as (port, store):
        yield port, store


def test_capability_lists_both_revisions(srv):
    w = Wire(srv[0], login=False)
    caps = w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()
    assert {"IMAP4rev1", "IMAP4rev2", "UTF8=ACCEPT", "ENABLE", "STATUS=SIZE"} <= set(caps)


def test_rev1_session_keeps_recent_and_unseen(srv):
    w = Wire(srv[0])
    got = b"".join(w.cmd("SELECT INBOX"))
    assert b"* 3 RECENT" in got and b"[UNSEEN 1]" in got
    assert b"\\Recent" in b"".join(w.cmd("FETCH 1 FLAGS"))
    assert w.untagged(w.cmd("SEARCH ALL"), b"SEARCH")[0] == b"* SEARCH 1 2 3\r\n"


def test_enable_imap4rev2_switches_the_session(srv):
    port, store = srv
    w = Wire(port)
    lines = w.cmd("ENABLE IMAP4rev2")
    assert lines[0] == b"* ENABLED IMAP4rev2\r\n"
    assert w.cmd("ENABLE IMAP4rev2")[0] == b"* ENABLED\r\n"  # RFC 5161 §3.1: only what this command turned on
    got = b"".join(w.cmd("SELECT INBOX"))
    assert b"* 3 EXISTS" in got
    assert b"RECENT" not in got and b"UNSEEN" not in got  # RFC 9051 Appendix E
    assert b'* LIST () "." INBOX\r\n' in got  # RFC 9051 §6.3.2: SELECT names the mailbox in a LIST response
    assert b"\\Recent" not in b"".join(w.cmd("FETCH 1:* FLAGS"))
    s = w.untagged(w.cmd("SEARCH ALL"), b"ESEARCH")[0]  # RFC 9051 §6.4.4
    assert s.startswith(b'* ESEARCH (TAG "') and s.endswith(b") ALL 1:3\r\n")
    s = w.untagged(w.cmd("UID SEARCH 2:3"), b"ESEARCH")[0]
    assert s.endswith(b") UID ALL 2:3\r\n")
    assert b"* SEARCH" not in b"".join(w.cmd("SEARCH NOT ALL"))
    # new mail: EXISTS and no RECENT
    maildir.write_new(store.account_root(USER), [b"Subject: d\n\nfour\n"])
    seen = w.wait(lambda ls: any(b"* 4 EXISTS" in ln for ln in ls))
    assert not any(b"RECENT" in ln for ln in seen)
    got = w.cmd("EXAMINE INBOX")
    assert got[0] == b"* OK [CLOSED] previous mailbox closed\r\n"  # RFC 9051 §7.1
    got = w.cmd("STATUS INBOX (MESSAGES SIZE DELETED)")
    assert w.untagged(got, b"STATUS")[0].startswith(b"* STATUS INBOX (MESSAGES 4 SIZE ")
    w.close()


def test_status_size_deleted_and_deleted_storage(srv):
    w = Wire(srv[0])
    w.cmd("SELECT INBOX")
    sizes = [int(ln.split()[-1].rstrip(b")")) for ln in w.cmd("FETCH 1:* RFC822.SIZE")[:-1]]
    w.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    line = w.untagged(w.cmd("STATUS INBOX (SIZE DELETED DELETED-STORAGE MESSAGES)"), b"STATUS")[0]
    assert line == b"* STATUS INBOX (SIZE %d DELETED 2 DELETED-STORAGE 1 MESSAGES 3)\r\n" % sum(sizes)
    assert w.status("STATUS INBOX (BOGUS)") == b"BAD"


def test_utf8_accept_mailbox_names(srv):
    w = Wire(srv[0])
    assert w.cmd("ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
    name = "Café & Crème".encode()
    assert w.status(b'CREATE "' + name + b'"') == b"OK"
    listing = b"".join(w.cmd('LIST "" "Caf*"'))
    assert name in listing and b"&AOk-" not in listing
    assert w.status(b'SELECT "' + name + b'"') == b"OK"
    assert b"MESSAGES 0" in b"".join(w.cmd(b'STATUS "' + name + b'" (MESSAGES)'))
    # APPEND … UTF8 (~{n}) (RFC 6855 §4)
    msg = "Subject: héllo\r\nFrom: ü@x.test\r\n\r\nbody\r\n".encode()
    w.send(b'a1 APPEND "' + name + b'" UTF8 (~{%d+}\r\n' % len(msg) + msg + b")\r\n")
    assert w.read_response(b"a1")[-1].split()[1] == b"OK"
    assert w.status(b"NOOP") == b"OK"
    assert "héllo".encode() in b"".join(w.cmd("FETCH 1 BODY.PEEK[HEADER]"))
    w.close()
    # a rev1 session sees the stored modified UTF-7 name, and may not use the UTF8 APPEND form
    w = Wire(srv[0])
    listing = b"".join(w.cmd('LIST "" "Caf*"'))
    assert b"Caf&AOk- &- Cr&AOg-me" in listing
    w.send(b"a1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg + b")\r\n")
    assert w.read_response(b"a1")[-1].split()[1] == b"BAD"
    w.close()
