"""The IMAP4rev1-era capabilities other files prove without naming: UIDPLUS (RFC 4315), SASL-IR (RFC 4959) and
APPENDLIMIT (RFC 7889), each checked against its advertisement on the raw protocol."""

from __future__ import annotations

import base64

import pytest

from tests.access.clients import PASSWORD, USER
from tests.access.imapsrv import listener
from tests.access.wire import Wire


@pytest.fixture
def port(tmp_path):
    with listener(tmp_path, [b"Subject: a\n\none\n", b"Subject: b\n\ntwo\n"]) as (p, _):
        yield p


def caps(w: Wire) -> list[str]:
    return w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()


def test_uidplus(port):
    w = Wire(port)
    assert "UIDPLUS" in caps(w)
    got = w.cmd("APPEND INBOX {19+}\r\nSubject: c\r\n\r\nthree")
    assert got[-1].split()[1:3] == [b"OK", b"[APPENDUID"] and got[-1].split()[4] == b"3]"  # RFC 4315 §3
    w.cmd("SELECT INBOX")
    assert b"[COPYUID " in w.cmd("COPY 1:2 Trash")[-1]  # RFC 4315 §3
    w.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    got = w.cmd("UID EXPUNGE 1")  # RFC 4315 §2.1: only the named UIDs go
    assert [ln for ln in got if ln.endswith(b"EXPUNGE\r\n")] == [b"* 1 EXPUNGE\r\n"]


def test_sasl_ir(port):
    w = Wire(port, login=False)
    assert "SASL-IR" in caps(w)
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert w.status(f"AUTHENTICATE PLAIN {ir}") == b"OK"  # RFC 4959 §3: no continuation round trip


def test_appendlimit(port):
    w = Wire(port)
    limit = next(int(c.split("=")[1]) for c in caps(w) if c.startswith("APPENDLIMIT="))
    assert w.cmd(f"APPEND INBOX {{{limit + 1}}}")[-1].split()[1:3] == [b"NO", b"[TOOBIG]"]  # RFC 7889 §4
    assert w.status("NOOP") == b"OK"
    assert w.untagged(w.cmd("STATUS INBOX (APPENDLIMIT)"), b"STATUS")[0] == b"* STATUS INBOX (APPENDLIMIT %d)\r\n" % limit
