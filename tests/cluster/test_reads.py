"""Reading large messages in pieces (``FolderIndex.open``), on both stores, through real clients: a 30 MiB message
fetched whole, in part and as BINARY over IMAP (imaplib) and retrieved over POP3 (poplib) arrives byte for byte while
the server's resident memory grows by a fraction of the message — it is never held whole. And the PostgreSQL
store's MAILBOXID (RFC 8474) survives RENAME over IMAP, as the local store's does."""

from __future__ import annotations

import imaplib
import poplib
import re
import time
from pathlib import Path

import pytest

from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)

USER, PASSWORD = "big@example.test", "secret"
SIZE = 30 << 20
BOUND = 16 << 20  # peak RSS growth allowed while the 30 MiB message is sent (read whole, as before: 150-210 MiB)


def _message() -> bytes:
    """30 MiB, CRLF: text lines (some starting with "." for POP3's byte-stuffing) and a NUL-free body."""
    line = b"0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789\r\n"  # 78 octets
    body = bytearray(b"From: a@example.test\r\nTo: big@example.test\r\nSubject: large\r\n\r\n")
    i = 0
    while len(body) < SIZE:
        body += (b"." if i % 1000 == 0 else b"") + line
        i += 1
    return bytes(body)


def _rss(pid: int, what: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(what + ":"):
            return int(row.split()[1]) * 1024
    raise AssertionError(what)


def _peak_reset(pid: int) -> int:
    """Resets the process's peak RSS (VmHWM) to its current RSS (proc(5) clear_refs 5) and returns it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _rss(pid, "VmRSS")


def _growth(pid: int, base: int) -> int:
    return _rss(pid, "VmHWM") - base


@pytest.fixture(params=["local", "postgresql"])
def server(request, server_factory):
    sections = {"limits": {"max_message_size": 64 << 20}}
    if request.param == "postgresql":
        pg = request.getfixturevalue("pg_cluster")
        sections["store"] = {"backend": "postgresql", "dsn": pg.new_database(), "node": "n1"}
    srv = server_factory(request.param, listeners=("imap", "pop3"), domains=("example.test",), sections=sections)
    srv.add_user(USER, PASSWORD)
    return srv.start()


def test_a_30_mib_message_is_sent_in_pieces_by_imap_and_pop3(server):
    data = _message()
    c = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=60)
    c.login(USER, PASSWORD)
    assert c.append("INBOX", None, None, data)[0] == "OK"
    c.logout()
    server.stop()  # a fresh process: memory the APPEND took and freed would hide what the reads take
    server.start()
    c = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=60)
    c.login(USER, PASSWORD)
    c.select("INBOX")
    pid = server.proc.pid
    time.sleep(0.2)
    peaks = []
    for items, want in (("(BODY.PEEK[])", data), ("(BODY.PEEK[]<1000.20000000>)", data[1000:20001000]),
                        ("(BINARY.PEEK[])", data), ("(RFC822.SIZE BINARY.SIZE[])", None)):
        base = _peak_reset(pid)
        typ, resp = c.uid("FETCH", "1", items)
        peaks.append(_growth(pid, base))
        assert typ == "OK", resp
        if want is None:
            assert re.search(rb"RFC822.SIZE %d BINARY.SIZE\[\] %d" % (len(data), len(data)), resp[0]), resp
        else:
            assert resp[0][1] == want, (items, len(resp[0][1]))
        del resp
    c.logout()
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=60)
    p.user(USER)
    p.pass_(PASSWORD)
    base = _peak_reset(pid)
    resp, lines, octets = p.retr(1)
    peaks.append(_growth(pid, base))
    assert resp.startswith(b"+OK %d octets" % len(data))
    assert b"\r\n".join(lines) + b"\r\n" == data  # poplib undoes the byte-stuffing
    del lines
    p.quit()
    print("peak RSS growth per FETCH/RETR, KiB:", [p >> 10 for p in peaks])
    assert max(peaks) < BOUND, [p >> 20 for p in peaks]  # MiB grown per FETCH / RETR


def test_mailboxid_survives_rename_on_postgresql(server_factory, pg_cluster):  # noqa: F811
    """RFC 8474 §4.1: RENAME keeps MAILBOXID; a folder deleted and made again gets a new one."""
    node = server_factory("pg", listeners=("imap",), domains=("example.test",),
                          sections={"store": {"backend": "postgresql", "dsn": pg_cluster.new_database(),
                                              "node": "n1"}})
    node.add_user(USER, PASSWORD)
    node.start()
    c = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
    c.login(USER, PASSWORD)

    def created(name: str) -> str:
        typ, data = c.create(name)
        assert typ == "OK", data
        return re.search(rb"MAILBOXID \(([^)]+)\)", data[0]).group(1).decode()

    def status(name: str) -> str:
        typ, data = c.status(name, "(MAILBOXID)")
        assert typ == "OK", data
        return re.search(rb"MAILBOXID \(([^)]+)\)", data[0]).group(1).decode()

    first = created("Projects")
    child = created("Projects.Old")
    assert status("Projects") == first and first != child
    assert c.rename("Projects", "Archive2026")[0] == "OK"
    assert status("Archive2026") == first and status("Archive2026.Old") == child
    assert c.select("Archive2026")[0] == "OK"
    assert b"[MAILBOXID (%s)]" % first.encode() in b" ".join(c.untagged_responses.get("OK", []))
    c.close()
    assert c.delete("Archive2026.Old")[0] == "OK" and c.delete("Archive2026")[0] == "OK"
    assert created("Projects") not in (first, child)
    c.logout()
