"""Scenario 50: IMAP4rev1 with Python's imaplib against a real `courrier serve`: messages delivered over SMTP are
served byte-exact with CRLF, searched, flagged (flags persist), moved, appended, expunged and announced to IDLE."""

from __future__ import annotations

import re

import pytest

from tests.access.clients import PASSWORD, USER, Raw, deliver, imap, server_with_corpus
from tests.access.messages import ALL, NON_ASCII


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = server_with_corpus(tmp_path_factory.mktemp("imap50"), ("smtp", "imap", "imaps"))
    yield s
    s.stop()


def fetch_one(c, seq: str, item: str) -> tuple[bytes, bytes]:
    typ, data = c.fetch(seq, f"({item})")
    assert typ == "OK", data
    return data[0][0], data[0][1]


def test_body_is_the_maildir_file_with_crlf_and_size_matches(srv):
    files = [m.data for m in srv.stored(USER)]  # the Maildir files, or the rows of PostgreSQL
    c = imap(srv)
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0]) == len(ALL) == len(files)
    typ, data = c.fetch("1:*", "(RFC822.SIZE BODY.PEEK[])")
    bodies = [d for d in data if isinstance(d, tuple)]
    expected = {f.replace(b"\n", b"\r\n") for f in files}
    assert {b for _, b in bodies} == expected
    for head, body in bodies:
        assert int(re.search(rb"RFC822.SIZE (\d+)", head).group(1)) == len(body)
    # partial fetch and RFC822.HEADER are slices of the same bytes
    head, part = fetch_one(c, "1", "BODY.PEEK[]<10.20>")
    _, whole = fetch_one(c, "1", "BODY.PEEK[]")
    assert part == whole[10:30] and b"BODY[]<10>" in head
    _, header = fetch_one(c, "1", "RFC822.HEADER")
    assert whole.startswith(header) and header.endswith(b"\r\n\r\n")
    c.logout()


def test_search(srv):
    c = imap(srv)
    c.select("INBOX", readonly=True)
    assert c.search(None, "SUBJECT", "nested") == ("OK", [b"3"])
    assert c.search(None, "OR", "FROM", "carol", "FROM", "frank") == ("OK", [b"2 3"])
    c.literal = "déjà".encode()
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "BODY")
    assert typ == "OK" and len(data[0].split()) == 1
    assert c.search(None, "HEADER", "In-Reply-To", "alt@else.test") == ("OK", [b"3"])
    assert c.search(None, "NOT", "SEEN")[1] == [b"1 2 3 4"]
    typ, data = c.search("ISO-8859-15", "ALL")
    c.logout()


def test_flags_persist_across_reconnects_and_reach_the_file_name(srv):
    c = imap(srv)
    c.select("INBOX")
    typ, data = c.store("2", "+FLAGS", r"(\Flagged \Answered $Important)")
    assert typ == "OK" and b"\\Flagged" in data[0]
    c.logout()
    c = imap(srv)
    c.select("INBOX")
    head, _ = fetch_one(c, "2", "FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert b"\\Flagged" in head and b"\\Answered" in head and b"$Important" in head
    # in the store: the letters F and R of the Maildir file name, or the row's flags
    assert any({"\\Flagged", "\\Answered"} <= m.flags for m in srv.stored(USER))
    c.store("2", "-FLAGS.SILENT", r"(\Answered)")
    c.logout()


def test_append_to_sent_then_fetch_same_bytes(srv):
    c = imap(srv)
    msg = b"From: bob@example.test\r\nTo: x@else.test\r\nSubject: draft\r\n\r\nsent text\r\n"
    typ, data = c.append("Sent", r"(\Seen)", '"02-Mar-2026 10:00:00 +0100"', msg)
    assert typ == "OK" and data[0].startswith(b"[APPENDUID ")
    uid = data[0].split()[2].rstrip(b"]")
    c.select("Sent")
    typ, data = c.uid("FETCH", uid.decode(), "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert data[0][1] == msg
    assert b"\\Seen" in data[0][0] and b'INTERNALDATE "02-Mar-2026 09:00:00 +0000"' in data[0][0]
    assert c.append("NoSuchBox", None, None, msg)[1][0].startswith(b"[TRYCREATE]")
    c.logout()


def test_move_to_trash_and_expunge_seen_by_a_second_session(srv):
    deliver(srv, b"Subject: to move\r\n\r\nmove me\r\n")
    deliver(srv, b"Subject: to delete\r\n\r\ndelete me\r\n")
    a, b = imap(srv), imap(srv)
    a.select("INBOX")
    b.select("INBOX")
    move_uid = a.uid("SEARCH", None, "SUBJECT", '"to move"')[1][0].decode()
    typ, data = a.uid("MOVE", move_uid, "Trash")
    assert typ == "OK"
    typ, data = b.noop()
    assert any(b"EXPUNGE" in d for d in b.untagged_responses.get("EXPUNGE", [])) or "EXPUNGE" in b.untagged_responses
    b.untagged_responses.clear()
    a.select("Trash")
    assert a.search(None, "SUBJECT", '"to move"')[1][0] != b""
    a.select("INBOX")
    seq = a.search(None, "SUBJECT", '"to delete"')[1][0].decode()
    a.store(seq, "+FLAGS", r"(\Deleted)")
    typ, data = a.expunge()
    assert data == [seq.encode()]
    b.noop()
    assert b.untagged_responses.get("EXPUNGE") == [seq.encode()]
    a.logout()
    b.logout()


def test_idle_sees_a_message_delivered_by_smtp(srv):
    c = Raw(srv.ports["imap"])
    c.line()
    c.send(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\n".encode())
    lines = c.until(b"b OK")
    exists = int(next(ln for ln in lines if ln.endswith(b" EXISTS\r\n")).split()[1])
    c.send(b"c IDLE\r\n")
    assert c.line().startswith(b"+ ")
    deliver(srv, b"Subject: while idling\r\n\r\nhello\r\n")
    got = c.until(b"* %d EXISTS" % (exists + 1))
    assert got
    c.send(b"DONE\r\n")
    assert c.until(b"c ")[-1].startswith(b"c OK")
    c.close()


def test_malformed_commands_get_bad_and_the_session_survives(srv):
    c = Raw(srv.ports["imap"])
    c.line()
    for bad in (b"\r\n", b"a1\r\n", b"a2 FROB\r\n", b'a3 LOGIN "unterminated\r\n', b"a4 FETCH 1 (FLAGS\r\n",
                b"a5 SELECT INBOX\r\n", b"a6 CAPABILITY extra\r\n"):
        c.send(bad)
        ln = c.line()
        assert b" BAD " in ln, (bad, ln)
    c.send(b"a7 LOGIN " + USER.encode() + b" {6}\r\n")
    assert c.line().startswith(b"+ ")
    c.send(PASSWORD.encode() + b"\r\n")
    assert c.until(b"a7 ")[-1].startswith(b"a7 OK")
    c.send(b"a8 SELECT INBOX\r\na9 FETCH 99999 FLAGS\r\na10 APPEND INBOX {999999999999}\r\n")
    assert c.until(b"a9 ")[-1].startswith(b"a9 BAD")
    assert c.until(b"a10 ")[-1].startswith(b"a10 NO [TOOBIG]")
    c.send(b"a11 NOOP\r\n")
    assert c.until(b"a11 ")[-1].startswith(b"a11 OK")
    c.close()


def test_special_use_list_status_and_non_ascii_envelope(srv):
    c = imap(srv)
    typ, data = c.list()
    listed = b"\n".join(data)
    for name, attr in ((b"Sent", b"\\Sent"), (b"Trash", b"\\Trash"), (b"Drafts", b"\\Drafts"), (b"Junk", b"\\Junk")):
        assert re.search(rb"\(([^)]*)" + re.escape(attr) + rb"[^)]*\) \".\" " + name, listed), listed
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UNSEEN)")
    assert typ == "OK" and b"MESSAGES" in data[0]
    assert c.create("Projects.2026")[0] == "OK"
    assert c.rename("Projects.2026", "Projects.2027")[0] == "OK"
    assert any(b"Projects.2027" in d for d in c.list('""', "Projects.*")[1])
    assert c.delete("Projects.2027")[0] == "OK"
    c.select("INBOX", readonly=True)
    seq = c.search(None, "HEADER", "Message-ID", "utf8@else.test")[1][0].decode()
    head, body = fetch_one(c, seq, "ENVELOPE BODY.PEEK[TEXT]")
    assert b'"=?utf-8?b?Q2Fmw6kgZMOpasOgIHZ1?="' in head
    assert body == NON_ASCII.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")
    c.logout()
