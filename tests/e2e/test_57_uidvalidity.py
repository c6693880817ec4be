"""Scenario 57: RFC 3501 §2.3.1.1 across restarts: UIDs and UIDVALIDITY survive `courrier serve` restarts; when
the index is lost (courrier.db deleted) the Maildir's courrier-uidlist gives every message its UID back and
UIDVALIDITY stays (issue 16); when that record is lost too the UIDs are assigned afresh and UIDVALIDITY changes, even
within the same second; a mailbox deleted and re-created never gets its old UIDVALIDITY back. POP3 UIDLs (RFC 1939 §7) stay the
same through all of it, and through flag changes that rename the Maildir files."""

from __future__ import annotations

import poplib
import re

import pytest

from tests.access.clients import PASSWORD, USER, deliver
from tests.access.wire import Wire


def view(srv, box: str = "INBOX") -> tuple[int, int, list[int]]:
    """(UIDVALIDITY, UIDNEXT, UIDs) of ``box`` as an IMAP client sees it."""
    w = Wire(srv.ports["imap"])
    got = b"".join(w.cmd(f"EXAMINE {box}"))
    validity = int(re.search(rb"UIDVALIDITY (\d+)", got).group(1))
    uidnext = int(re.search(rb"UIDNEXT (\d+)", got).group(1))
    uids = [int(x) for x in w.cmd("UID SEARCH ALL")[0].split()[2:]]
    w.close()
    return validity, uidnext, uids


def uidls(srv) -> list[bytes]:
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    out = [ln.split()[1] for ln in p.uidl()[1]]
    p.quit()
    return out


@pytest.mark.local_store("loses the SQLite index and the Maildir's courrier-uidlist: the local store's recovery by "
                         "nature")
def test_uids_survive_restarts_and_change_validity_when_the_index_is_lost(tmp_path):
    from tests.support import Server

    srv = Server(tmp_path, listeners=("smtp", "imap", "pop3"))
    srv.add_user(USER, PASSWORD)
    srv.start()
    try:
        for i in range(4):
            deliver(srv, f"Subject: u{i}\r\n\r\nbody\r\n".encode())
        w = Wire(srv.ports["imap"])
        w.cmd("SELECT INBOX")
        w.cmd("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        w.cmd("UID STORE 3 +FLAGS.SILENT (\\Seen $Kept)")  # renames the file (":2,S"); UIDL must not change
        w.cmd("EXPUNGE")
        w.close()
        before = view(srv)
        assert before[1:] == (5, [1, 3, 4])
        pop_before = uidls(srv)
        assert len(pop_before) == 3
        # a folder deleted and re-created at once gets a new UIDVALIDITY (its UIDs start again at 1)
        w = Wire(srv.ports["imap"])
        assert w.status("CREATE Tmp") == b"OK"
        assert w.status("APPEND Tmp {12+}\r\nSubject: t\r\n") == b"OK"
        first = view(srv, "Tmp")
        assert w.status("DELETE Tmp") == b"OK" and w.status("CREATE Tmp") == b"OK"
        w.close()
        again = view(srv, "Tmp")
        assert again[0] > first[0] and again[1:] == (1, [])
    finally:
        srv.stop()

    srv.start()  # a restart keeps everything
    try:
        assert view(srv) == before
        assert uidls(srv) == pop_before
        w = Wire(srv.ports["imap"])
        w.cmd("EXAMINE INBOX")
        got = w.cmd("UID FETCH 3 FLAGS")
        assert b"FLAGS (" in got[0] and b"$Kept" in got[0] and b"\\Seen" in got[0]  # keywords live in the index
        w.close()
    finally:
        srv.stop()

    for f in srv.data.glob("courrier.db*"):  # the index is gone (and the accounts with it)
        f.unlink()
    srv.add_user(USER, PASSWORD)
    srv.start()
    try:  # issue 16: the Maildir's courrier-uidlist keeps the UIDs, so UIDVALIDITY stays; keywords are in the names
        assert view(srv) == before
        assert uidls(srv) == pop_before
        w = Wire(srv.ports["imap"])
        w.cmd("EXAMINE INBOX")
        got = w.cmd("UID FETCH 3 FLAGS")
        assert b"$Kept" in got[0] and b"\\Seen" in got[0]  # keywords as dovecot-keywords letters in the file name
        w.close()
    finally:
        srv.stop()

    for f in [*srv.data.glob("courrier.db*"), srv.maildir(USER) / "courrier-uidlist"]:  # index and uidlist lost
        f.unlink()
    srv.add_user(USER, PASSWORD)
    srv.start()
    try:
        after = view(srv)
        assert after[0] > before[0]  # §2.3.1.1: new UIDs, so a new UIDVALIDITY, whatever the clock says
        assert after[1:] == (4, [1, 2, 3])
        assert uidls(srv) == pop_before  # UIDLs come from the Maildir names, not from the index
        w = Wire(srv.ports["imap"])
        w.cmd("EXAMINE INBOX")
        assert b"\\Seen" in w.cmd("FETCH 2 FLAGS")[0]  # system flags live in the file names
        w.close()
    finally:
        srv.stop()
