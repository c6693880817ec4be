"""CONDSTORE and QRESYNC (RFC 7162) on the raw protocol, over a real listener on loopback (tests/access/wire.py),
and what keeps them true across a restart and an index rebuild (the Maildir's courrier-uidlist), plus keywords in
Maildir file names (dovecot-keywords) and \\Recent across restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from courrier.access.auth import Authenticator
from courrier.access.imap.session import IMAPServer
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import maildir
from courrier.mailbox.store import MaildirStore, account_root
from courrier.net.limits import ConnectionLimiter
from courrier.net.listener import StreamListener
from tests.access.clients import PASSWORD, USER
from tests.access.wire import Wire


class Server:
    """A real IMAP listener (its own event loop in a thread) that can be stopped and started again on the same
    data directory — a restart of the server as far as the mailbox is concerned."""

    def __init__(self, data_dir: Path) -> None:
        self.cfg = dataclasses.replace(Config(), data_dir=data_dir, domains=("example.test",))
        Accounts(self.cfg.db_path).add(USER, PASSWORD)
        self.box = maildir.ensure(account_root(data_dir, USER))
        self.port = 0

    def start(self) -> Server:
        self.store = MaildirStore(self.cfg.data_dir)
        self.loop = asyncio.new_event_loop()
        server = IMAPServer(store=self.store, auth=Authenticator(self.cfg, Accounts(self.cfg.db_path), self.store),
                            tls_context=None, limits=self.cfg.limits, hostname="mx.test")
        self.lst = StreamListener("imap", server.handler(False), ConnectionLimiter(self.cfg.limits))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.srv = asyncio.run_coroutine_threadsafe(
            self.loop.create_server(self.lst.factory, "127.0.0.1", 0), self.loop).result(10)
        self.port = self.srv.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def stop() -> None:
            self.srv.close()
            await self.lst.shutdown()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.store.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def rebuild(self) -> None:
        """Stopped, the mailbox index emptied (what a lost index amounts to), started again."""
        self.stop()
        with sqlite3.connect(self.cfg.db_path) as c:
            for table in ("mbox_vanished", "mbox_messages", "mbox_folders"):
                c.execute(f"DELETE FROM {table}")
        self.start()

    def wire(self) -> Wire:
        return Wire(self.port)


@pytest.fixture
def srv(tmp_path):
    s = Server(tmp_path)
    for i in range(5):
        maildir.write_new(s.box, [f"Subject: m{i}\n\nbody {i}\n".encode()])
    s.start()
    yield s
    s.stop()


def code(lines: list[bytes], name: str) -> str:
    """The value of response code ``[NAME value]`` in any of the lines."""
    for ln in lines:
        m = re.search(rb"\[" + name.encode() + rb" ([^\]]*)\]", ln)
        if m:
            return m.group(1).decode()
    raise AssertionError(f"no [{name}] in {lines!r}")


def modseqs(lines: list[bytes]) -> dict[int, int]:
    """UID → MODSEQ of the FETCH responses."""
    out = {}
    for ln in lines:
        u, m = re.search(rb"UID (\d+)", ln), re.search(rb"MODSEQ \((\d+)\)", ln)
        if ln.startswith(b"* ") and b" FETCH " in ln and u and m:
            out[int(u.group(1))] = int(m.group(1))
    return out


def test_capabilities_and_enable(srv):
    """RFC 7162 §3.1, §3.2: both advertised; ENABLE QRESYNC enables CONDSTORE too and says what it turned on."""
    w = srv.wire()
    caps = w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].split()
    assert b"CONDSTORE" in caps and b"QRESYNC" in caps
    assert w.untagged(w.cmd("ENABLE QRESYNC"), b"ENABLED") == [b"* ENABLED QRESYNC\r\n"]
    assert w.untagged(w.cmd("ENABLE QRESYNC CONDSTORE"), b"ENABLED") == [b"* ENABLED\r\n"]  # on already
    w.close()
    w = srv.wire()
    assert w.untagged(w.cmd("ENABLE CONDSTORE X-UNKNOWN"), b"ENABLED") == [b"* ENABLED CONDSTORE\r\n"]
    assert w.status("SELECT INBOX (QRESYNC (1 1))") == b"BAD"  # CONDSTORE alone does not allow QRESYNC
    assert w.status("SELECT INBOX (NOSUCH)") == b"BAD"
    assert w.status("EXAMINE INBOX (CONDSTORE)") == b"OK"
    w.close()


def test_select_highestmodseq_and_fetch_modseq(srv):
    """§3.1.2.1 HIGHESTMODSEQ on SELECT; §3.1.4.1 MODSEQ fetch item; every change raises it (§3.1.1)."""
    w = srv.wire()
    lines = w.cmd("SELECT INBOX (CONDSTORE)")
    hms = int(code(lines, "HIGHESTMODSEQ"))
    assert hms > 0
    got = modseqs(w.cmd("FETCH 1:* (UID MODSEQ)"))
    assert sorted(got) == [1, 2, 3, 4, 5] and max(got.values()) <= hms
    w.cmd("STORE 2 +FLAGS.SILENT (\\Seen)")
    after = modseqs(w.cmd("FETCH 2 (UID MODSEQ)"))[2]
    assert after > hms
    status = w.untagged(w.cmd("STATUS INBOX (HIGHESTMODSEQ MESSAGES)"), b"STATUS")[0]
    assert re.search(rb"HIGHESTMODSEQ (\d+)", status).group(1) == str(after).encode()
    w.close()


def test_fetch_changedsince(srv):
    """§3.1.4.1: CHANGEDSINCE returns only messages changed since, with MODSEQ added."""
    w = srv.wire()
    hms = int(code(w.cmd("SELECT INBOX"), "HIGHESTMODSEQ"))
    w.cmd("STORE 3 +FLAGS (\\Flagged)")
    lines = w.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    fetched = [ln for ln in lines if ln.startswith(b"* ") and b" FETCH " in ln]
    assert len(fetched) == 1 and fetched[0].startswith(b"* 3 FETCH") and b"\\Flagged" in fetched[0]
    assert b"MODSEQ (" in fetched[0]
    assert w.status(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms + 100})") == b"OK"
    assert w.status("FETCH 1:* (FLAGS) (CHANGEDSINCE x)") == b"BAD"
    w.close()


def test_store_unchangedsince_modified(srv):
    """§3.1.3: a message changed after UNCHANGEDSINCE is left alone and named in [MODIFIED] (sequence numbers;
    UIDs for UID STORE); the others change and report their new MODSEQ."""
    w = srv.wire()
    w.cmd("SELECT INBOX")
    ms = modseqs(w.cmd("FETCH 1:* (UID MODSEQ)"))
    other = srv.wire()
    other.cmd("SELECT INBOX")
    other.cmd("STORE 4 +FLAGS (\\Answered)")  # another session changes message 4
    other.close()
    lines = w.cmd(f"STORE 1:5 (UNCHANGEDSINCE {max(ms.values())}) +FLAGS (\\Flagged)")
    assert code(lines, "MODIFIED") == "4"
    flagged = [ln for ln in lines if b"FETCH" in ln and b"\\Flagged" in ln]
    assert len(flagged) == 4 and all(b"MODSEQ (" in ln for ln in flagged)
    lines = w.cmd("FETCH 4 (FLAGS)")
    assert b"\\Flagged" not in b"".join(lines)
    # UID STORE: UIDs in MODIFIED; .SILENT still reports the MODSEQ of what changed (§3.1.3)
    lines = w.cmd("UID STORE 1:5 (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Seen)")
    assert code(lines, "MODIFIED") == "1:5"
    m4 = modseqs(w.cmd("FETCH 4 (UID MODSEQ)"))[4]
    lines = w.cmd(f"UID STORE 4 (UNCHANGEDSINCE {m4}) +FLAGS.SILENT (\\Seen)")
    assert lines[-1].split()[1] == b"OK" and b"MODIFIED" not in lines[-1]
    assert modseqs(lines)[4] > m4 and b"FLAGS" not in b"".join(lines[:-1])
    w.close()


def test_search_modseq(srv):
    """§3.1.5: SEARCH MODSEQ finds messages at or above the value, and says the highest MODSEQ among them."""
    w = srv.wire()
    w.cmd("SELECT INBOX")
    w.cmd("STORE 2,5 +FLAGS (\\Seen)")
    ms = modseqs(w.cmd("FETCH 1:* (UID MODSEQ)"))
    lines = w.cmd(f"SEARCH MODSEQ {ms[2]}")
    assert w.untagged(lines, b"SEARCH")[0] == f"* SEARCH 2 5 (MODSEQ {ms[2]})\r\n".encode()
    lines = w.cmd(f'UID SEARCH MODSEQ "/flags/\\\\Seen" all {ms[2]}')
    assert w.untagged(lines, b"SEARCH")[0] == f"* SEARCH 2 5 (MODSEQ {ms[2]})\r\n".encode()
    lines = w.cmd(f"SEARCH RETURN (COUNT) MODSEQ {ms[2]}")
    assert w.untagged(lines, b"ESEARCH")[0].endswith(f"COUNT 2 MODSEQ {ms[2]}\r\n".encode())
    assert w.untagged(w.cmd(f"SEARCH MODSEQ {ms[2] + 1}"), b"SEARCH")[0] == b"* SEARCH\r\n"
    w.close()


def test_unsolicited_fetch_carries_modseq_once_enabled(srv):
    """§3.1.4.1: once CONDSTORE is enabled, flag changes made elsewhere come with MODSEQ."""
    w = srv.wire()
    w.cmd("ENABLE CONDSTORE")
    w.cmd("SELECT INBOX")
    other = srv.wire()
    other.cmd("SELECT INBOX")
    other.cmd("STORE 1 +FLAGS (\\Seen)")
    other.close()
    seen = w.wait(lambda ls: any(b"FETCH" in ln for ln in ls))
    assert any(re.match(rb"\* 1 FETCH \(UID 1 FLAGS \([^)]*\\Seen\) MODSEQ \(\d+\)\)", ln) for ln in seen), seen
    w.close()


def test_qresync_select_vanished_and_changes(srv):
    """§3.2.5: SELECT … (QRESYNC (uidvalidity modseq)) answers VANISHED (EARLIER) for what was expunged and FETCH
    (UID FLAGS MODSEQ) for what changed since; BAD without ENABLE QRESYNC; another UIDVALIDITY resyncs nothing."""
    w = srv.wire()
    lines = w.cmd("SELECT INBOX")
    uidvalidity, hms = code(lines, "UIDVALIDITY"), int(code(lines, "HIGHESTMODSEQ"))
    assert w.status(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms}))") == b"BAD"
    w.cmd("STORE 2 +FLAGS (\\Deleted)")
    w.cmd("EXPUNGE")
    w.cmd("STORE 4 +FLAGS (\\Flagged)")  # UID 5 after the expunge of UID 2
    w.close()
    w = srv.wire()
    w.cmd("ENABLE QRESYNC")
    lines = w.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms}))")
    assert lines[-1].split()[1] == b"OK"
    assert w.untagged(lines, b"VANISHED") == [b"* VANISHED (EARLIER) 2\r\n"]
    fetches = [ln for ln in lines if ln.startswith(b"* ") and b" FETCH " in ln]
    assert len(fetches) == 1 and re.match(rb"\* 4 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", fetches[0])
    assert int(code(lines, "HIGHESTMODSEQ")) > hms
    # known-uids limit the VANISHED answer (§3.2.5); a CLOSED code ends the previous mailbox (§3.2.11)
    lines = w.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {hms} 3:5 (1:3 3:5)))")
    assert b"* OK [CLOSED]" in lines[0]
    assert not w.untagged(lines, b"VANISHED")
    lines = w.cmd(f"EXAMINE INBOX (QRESYNC (1 {hms}))")  # another UIDVALIDITY: nothing to resync
    assert not w.untagged(lines, b"VANISHED") and not [ln for ln in lines if ln.startswith(b"* ") and b" FETCH " in ln]
    w.close()


def test_uid_fetch_vanished_and_vanished_responses(srv):
    """§3.2.6 UID FETCH … (CHANGEDSINCE n VANISHED) → VANISHED (EARLIER) first; §3.2.10 once QRESYNC is on, an
    expunge is told with VANISHED, not EXPUNGE, and the tagged OK carries HIGHESTMODSEQ."""
    w = srv.wire()
    w.cmd("ENABLE QRESYNC")
    hms = int(code(w.cmd("SELECT INBOX"), "HIGHESTMODSEQ"))
    w.cmd("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    lines = w.cmd("EXPUNGE")
    assert w.untagged(lines, b"VANISHED") == [b"* VANISHED 1,3\r\n"]
    assert not w.untagged(lines, b"EXPUNGE") and int(code(lines, "HIGHESTMODSEQ")) > hms
    lines = w.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) 1,3\r\n"
    assert w.status(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)") == b"BAD"  # UID FETCH only
    # another session's expunge comes as VANISHED too
    other = srv.wire()
    other.cmd("SELECT INBOX")
    other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.cmd("EXPUNGE")
    other.close()
    seen = w.wait(lambda ls: any(b"VANISHED" in ln for ln in ls))
    assert b"* VANISHED 2\r\n" in seen
    plain = srv.wire()  # without QRESYNC the old EXPUNGE response stays
    plain.cmd("SELECT INBOX")
    plain.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert plain.untagged(plain.cmd("EXPUNGE"), b"EXPUNGE") == [b"* 1 EXPUNGE\r\n"]
    plain.close()
    w.close()


def test_modseqs_uids_and_vanished_survive_restart_and_rebuild(srv):
    """Issue 16: after a restart and after the index is rebuilt from the Maildir, UIDVALIDITY, UIDs and
    mod-sequences are the same, and QRESYNC still answers VANISHED (EARLIER) from before."""
    w = srv.wire()
    lines = w.cmd("SELECT INBOX")
    uidvalidity, hms0 = code(lines, "UIDVALIDITY"), int(code(lines, "HIGHESTMODSEQ"))
    w.cmd("STORE 2 +FLAGS (\\Deleted)")
    w.cmd("EXPUNGE")
    w.cmd("STORE 1 +FLAGS (\\Seen $Work)")
    before = modseqs(w.cmd("FETCH 1:* (UID MODSEQ)"))
    hms1 = int(code(w.cmd("SELECT INBOX"), "HIGHESTMODSEQ"))
    w.close()
    for step in (srv.restart, srv.rebuild):
        step()
        w = srv.wire()
        w.cmd("ENABLE QRESYNC")
        lines = w.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms0}))")
        assert code(lines, "UIDVALIDITY") == uidvalidity, step
        assert int(code(lines, "HIGHESTMODSEQ")) >= hms1
        assert w.untagged(lines, b"VANISHED") == [b"* VANISHED (EARLIER) 2\r\n"], step
        after = modseqs(w.cmd("FETCH 1:* (UID MODSEQ)"))
        assert after == before, step
        flags = w.untagged(w.cmd("UID FETCH 1 (FLAGS)"), b"FETCH")[0]
        assert b"$Work" in flags and b"\\Seen" in flags, step
        # nothing changed since hms1: a resync from there is empty
        lines = w.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms1}))")
        assert not w.untagged(lines, b"VANISHED") and not [ln for ln in lines if ln.startswith(b"* ") and b" FETCH " in ln], step
        w.close()
    uidlist = (srv.box / "courrier-uidlist").read_text()
    assert uidlist.startswith(f"C1 V{uidvalidity} ")


def test_rebuild_without_uidlist_gets_new_uidvalidity(srv):
    """RFC 3501 §2.3.1.1: without the Maildir's record the UIDs are given afresh, so the UIDVALIDITY must change —
    and a QRESYNC with the old one resyncs nothing."""
    w = srv.wire()
    uidvalidity = code(w.cmd("SELECT INBOX"), "UIDVALIDITY")
    w.close()
    (srv.box / "courrier-uidlist").unlink()
    srv.rebuild()
    w = srv.wire()
    assert int(code(w.cmd("SELECT INBOX"), "UIDVALIDITY")) > int(uidvalidity)
    w.close()


def test_keywords_in_file_names_through_dovecot_keywords(srv):
    """Keywords get letters a–z in the file name, mapped by the Maildir's dovecot-keywords file (as Dovecot
    keeps them); a letter another program adds is read back as its keyword; removing a keyword drops its letter."""
    w = srv.wire()
    w.cmd("SELECT INBOX")
    w.cmd("STORE 1 +FLAGS ($Work Later)")
    kw = (srv.box / "dovecot-keywords").read_text().splitlines()
    assert sorted(kw) == ["0 $Work", "1 Later"] or sorted(kw) == ["0 Later", "1 $Work"]
    letters = {ln.split()[1]: "ab"[int(ln.split()[0])] for ln in kw}
    name = next(p.name for p in (srv.box / "cur").iterdir())
    assert name.endswith(":2," + "".join(sorted(letters.values())))
    w.cmd("STORE 1 -FLAGS (Later)")
    name = next(p.name for p in (srv.box / "cur").iterdir())
    assert name.endswith(":2," + letters["$Work"])
    # another program (mutt, Dovecot) gives message 2 the "Later" letter and \Seen
    path = sorted((srv.box / "new").iterdir())[0]
    path.rename(srv.box / "cur" / (path.name + ":2,S" + letters["Later"]))
    w.close()
    w = srv.wire()
    w.cmd("SELECT INBOX")
    found = w.untagged(w.cmd("UID SEARCH KEYWORD Later"), b"SEARCH")[0]
    assert len(found.split()) == 3, found
    w.close()


def test_recent_survives_restart(srv):
    """RFC 3501 §2.3.2: a message no session has seen is \\Recent for the next session even across a restart;
    one a session has seen stays not recent."""
    srv.restart()
    w = srv.wire()
    lines = w.cmd("EXAMINE INBOX")  # EXAMINE shows \Recent without taking it
    assert w.untagged(lines, b"RECENT") == [b"* 5 RECENT\r\n"]
    w.close()
    srv.restart()
    w = srv.wire()
    assert w.untagged(w.cmd("SELECT INBOX"), b"RECENT") == [b"* 5 RECENT\r\n"]  # claims them
    w.close()
    maildir.write_new(srv.box, [b"Subject: new\n\nx\n"])
    srv.restart()
    w = srv.wire()
    assert w.untagged(w.cmd("SELECT INBOX"), b"RECENT") == [b"* 1 RECENT\r\n"]
    w.close()


def test_qresync_before_the_records_names_every_missing_uid(srv):
    """RFC 7162 §3.2.5.2: when the expunge records do not reach back to the client's mod-sequence (a folder from
    before migration 0060, or records pruned), VANISHED (EARLIER) names every UID of the range that is not there."""
    w = srv.wire()
    lines = w.cmd("SELECT INBOX")
    uidvalidity, hms = code(lines, "UIDVALIDITY"), int(code(lines, "HIGHESTMODSEQ"))
    w.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    w.cmd("EXPUNGE")
    w.close()
    srv.stop()
    with sqlite3.connect(srv.cfg.db_path) as c:
        c.execute("UPDATE mbox_folders SET vanishedfloor = highestmodseq")
        c.execute("DELETE FROM mbox_vanished")
    srv.start()
    w = srv.wire()
    w.cmd("ENABLE QRESYNC")
    lines = w.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms}))")
    assert w.untagged(lines, b"VANISHED") == [b"* VANISHED (EARLIER) 2,4\r\n"]
    lines = w.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {hms} 1:3))")
    assert w.untagged(lines, b"VANISHED") == [b"* VANISHED (EARLIER) 2\r\n"]
    lines = w.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) 2,4\r\n"
    w.close()
