"""SAVEDATE (RFC 8514) on the raw protocol over a real listener: FETCH SAVEDATE (the time the message was saved in
this mailbox: a COPY gets its own), SEARCH SAVEDBEFORE / SAVEDON / SAVEDSINCE / SAVEDATESUPPORTED."""

from __future__ import annotations

import datetime
import re
import time

from courrier.access.imap import savedate as SD
from courrier.mailbox.api import Msg
from tests.access.imapsrv import listener
from tests.access.wire import Wire


def test_savedate_fetch_and_search(tmp_path):
    before = time.time()
    with listener(tmp_path, [b"Subject: one\nDate: Mon, 1 Jan 2001 00:00:00 +0000\n\nx\n"]) as (port, _):
        w = Wire(port)
        assert "SAVEDATE" in w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()
        w.cmd("SELECT INBOX")
        line = w.cmd("FETCH 1 (SAVEDATE INTERNALDATE)")[0]
        m = re.search(rb'SAVEDATE "([^"]+)"', line)
        assert m, line
        saved = datetime.datetime.strptime(m.group(1).decode(), "%d-%b-%Y %H:%M:%S %z").timestamp()
        assert before - 1 <= saved <= time.time() + 1
        today = datetime.datetime.now(datetime.UTC).strftime("%d-%b-%Y")
        assert w.untagged(w.cmd(f"SEARCH SAVEDON {today}"), b"SEARCH")[0] == b"* SEARCH 1\r\n"
        assert w.untagged(w.cmd(f"SEARCH SAVEDSINCE {today}"), b"SEARCH")[0] == b"* SEARCH 1\r\n"
        assert w.untagged(w.cmd(f"SEARCH SAVEDBEFORE {today}"), b"SEARCH")[0] == b"* SEARCH\r\n"
        assert w.untagged(w.cmd("SEARCH SAVEDATESUPPORTED"), b"SEARCH")[0] == b"* SEARCH 1\r\n"
        assert w.status("SEARCH SAVEDON notadate") == b"BAD"
        w.close()


def test_savedate_comes_from_the_maildir_name():
    """The store names each saved file ``<secs>.M<usecs>…`` (a COPY or MOVE gets a new name); other names fall back
    to the internal date (RFC 8514 §3)."""
    m = Msg(1, "1700000000.M250000P12Q3.host", "new/x", frozenset(), 10, 5.0, 1)
    assert SD.of(m) == 1700000000.25
    assert SD.of(Msg(1, "weird-name", "new/x", frozenset(), 10, 5.0, 1)) == 5.0
