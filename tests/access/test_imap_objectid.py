"""OBJECTID (RFC 8474) on the raw protocol over a real listener: MAILBOXID on SELECT, CREATE and STATUS, kept
across RENAME and restarts, new after DELETE + CREATE; EMAILID kept by COPY and MOVE; THREADID shared by replies;
SEARCH EMAILID / THREADID."""

from __future__ import annotations

import re

import pytest

from tests.access.imapsrv import listener
from tests.access.wire import Wire

ROOT = b"From: a@x.test\nSubject: root\nMessage-ID: <root@x>\n\nfirst\n"
REPLY = b"From: b@x.test\nSubject: Re: root\nMessage-ID: <r1@x>\nReferences: <root@x>\n\nsecond\n"
OTHER = b"From: c@x.test\nSubject: other\nMessage-ID: <o@x>\n\nthird\n"
NOID = b"From: d@x.test\nSubject: no id\n\nfourth\n"
OBJECTID = re.compile(rb"^[A-Za-z0-9_-]{1,255}$")


@pytest.fixture
def srv(tmp_path):
    with listener(tmp_path, [ROOT, REPLY, OTHER, NOID]) as (port, store):
        yield port, store


def mailboxid(lines: list[bytes]) -> bytes:
    m = re.search(rb"MAILBOXID \(([^)]*)\)", b"".join(lines))
    assert m, lines
    assert OBJECTID.match(m.group(1))
    return m.group(1)


def ids(w: Wire, what: bytes, seqs: str = "1:*") -> dict[int, bytes]:
    out = {}
    for ln in w.cmd(f"FETCH {seqs} ({what.decode()})")[:-1]:
        m = re.match(rb"\* (\d+) FETCH .*%s \(([^)]*)\)" % what, ln)
        assert m, ln
        out[int(m.group(1))] = m.group(2)
    return out


def test_capability_and_mailboxid(srv):
    port, _ = srv
    w = Wire(port)
    assert "OBJECTID" in w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()
    inbox = mailboxid(w.cmd("SELECT INBOX"))
    assert mailboxid(w.cmd("STATUS INBOX (MAILBOXID MESSAGES)")) == inbox
    created = w.cmd("CREATE Projects")
    assert created[-1].split()[1] == b"OK"
    proj = mailboxid(created)  # §4.1: in the tagged OK of CREATE
    assert proj != inbox
    assert mailboxid(w.cmd("STATUS Projects (MAILBOXID)")) == proj
    assert w.status("RENAME Projects Work") == b"OK"
    assert mailboxid(w.cmd("STATUS Work (MAILBOXID)")) == proj  # §4.1: RENAME keeps it
    assert w.status("DELETE Work") == b"OK"
    assert mailboxid(w.cmd("CREATE Work")) != proj  # a new mailbox of the same name is another mailbox
    w.close()
    w = Wire(port)  # a new session (the id is kept with the mailbox, not in memory)
    assert mailboxid(w.cmd("EXAMINE INBOX")) == inbox
    w.close()


def test_emailid_kept_by_copy_and_move_threadid_shared(srv):
    port, _ = srv
    w = Wire(port)
    w.cmd("SELECT INBOX")
    e = ids(w, b"EMAILID")
    t = ids(w, b"THREADID")
    assert len(set(e.values())) == 4 and all(OBJECTID.match(v) for v in e.values())
    assert t[1] == t[2] and len({t[1], t[3], t[4]}) == 3  # the reply is in its root's thread
    assert w.status("CREATE Archive2") == b"OK"
    assert w.status("COPY 1 Archive2") == b"OK"
    assert w.status("MOVE 3 Archive2") == b"OK"
    w.cmd("SELECT Archive2")
    e2 = ids(w, b"EMAILID")
    assert sorted(e2.values()) == sorted([e[1], e[3]])  # §5.1: COPY and MOVE keep the EMAILID
    assert sorted(ids(w, b"THREADID").values()) == sorted([t[1], t[3]])
    w.cmd("SELECT INBOX")
    assert w.untagged(w.cmd(f"SEARCH EMAILID {e[2].decode()}"), b"SEARCH")[0] == b"* SEARCH 2\r\n"
    assert w.untagged(w.cmd(f"UID SEARCH THREADID {t[1].decode()}"), b"SEARCH")[0] == b"* SEARCH 1 2\r\n"
    assert w.untagged(w.cmd("SEARCH EMAILID Mnothing"), b"SEARCH")[0] == b"* SEARCH\r\n"
    assert w.status("SEARCH EMAILID (bad)") == b"BAD"
    w.close()
