"""Scenario 56: RFC 3501 syntax and single-session semantics on the wire against `courrier serve`: literals
(§4.3, RFC 7888), BAD vs NO and commands in the wrong state (§6, §7.1), case-insensitivity, mailbox names
(§5.1, modified UTF-7 §5.1.3, INBOX), LIST/LSUB wildcards (§6.3.8-9), RENAME INBOX (§6.3.5), STATUS (§6.3.10),
APPEND (§6.3.11, RFC 4315), SEARCH (§6.4.4), FETCH sections (§6.4.5) and ENVELOPE groups (§7.4.2)."""

from __future__ import annotations

import re
import subprocess

import pytest

from courrier.mailbox.folders import encode_mutf7
from tests.access.clients import PASSWORD, USER, deliver, imap
from tests.access.messages import NESTED, crlf
from tests.access.wire import Wire

GROUPS = b"""From: Ann <ann@else.test>
To: undisclosed-recipients:;
Cc: Team: "Smith, Jo" <jo@else.test>, kim@else.test;, solo@else.test
Subject: groups
Date: Sat, 07 Mar 2026 10:00:00 +0000

hi
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("imap56"), listeners=("smtp", "imap"),
               sections={"limits": {"max_message_size": 200_000}})
    s.add_user(USER, PASSWORD)
    s.start()
    deliver(s, NESTED)
    deliver(s, GROUPS)
    yield s
    s.stop()


def test_synchronizing_and_non_synchronizing_literals(srv):
    w = Wire(srv.ports["imap"], login=False)
    w.send(b"a LOGIN {%d}\r\n" % len(USER))
    assert w.line().startswith(b"+ ")  # §4.3: the server asks for the octets
    w.send(USER.encode() + b" {%d+}\r\n" % len(PASSWORD) + PASSWORD.encode() + b"\r\n")  # LITERAL+: no "+"
    assert w.read_response(b"a")[-1].startswith(b"a OK")
    msg = b"Subject: lit\r\n\r\n" + b"x" * 100 + b"\r\n"
    w.send(b"b APPEND INBOX (\\Seen) {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert w.read_response(b"b")[-1].startswith(b"b OK [APPENDUID ")
    # too large: a synchronizing literal is refused before it is sent, and the session goes on (RFC 7889 TOOBIG)
    assert w.cmd("APPEND INBOX {300000}")[-1].startswith(b"t1 NO [TOOBIG]")
    assert w.cmd("LOGIN {70000}")[-1].startswith(b"t2 NO [TOOBIG]")  # other literals are capped lower
    assert w.status("NOOP") == b"OK"
    # a string holding CR/LF or NUL-free 8-bit text can only travel as a literal; a quoted one may not span lines
    assert w.status(b'SELECT "INBOX') == b"BAD"
    # many small literals add up to the per-command budget too
    w.send(b"c SEARCH" + b" TEXT {60000+}\r\n" + b"y" * 60000 + b"" .join(
        b" TEXT {60000+}\r\n" + b"y" * 60000 for _ in range(20)) + b"\r\n")
    assert w.line().startswith(b"* BYE")  # non-synchronizing: the octets are on their way, so the session ends
    w.close()
    w = Wire(srv.ports["imap"])
    w.send(b"d APPEND INBOX {300000+}\r\n")
    assert w.line().startswith(b"* BYE")  # RFC 7888 §4: a non-synchronizing literal the server will not take
    w.close()


def test_bad_for_syntax_no_for_refusals_and_wrong_state(srv):
    w = Wire(srv.ports["imap"], login=False)
    assert w.status("FROBNICATE") == b"BAD"  # unknown command
    assert w.status("SELECT INBOX") == b"BAD"  # §3: not in the not-authenticated state
    assert w.status("FETCH 1 FLAGS") == b"BAD"
    assert w.status("LOGIN bob@example.test wrong") == b"NO"  # §6.2.3: a refusal, not a syntax error
    assert w.cmd("LOGIN bob@example.test")[-1].split()[1] == b"BAD"
    assert w.status(f"login {USER} {PASSWORD}") == b"OK"  # §9: command names are case-insensitive
    assert w.status(f"LOGIN {USER} {PASSWORD}") == b"BAD"  # already authenticated
    assert w.status("FETCH 1 FLAGS") == b"BAD"  # no mailbox selected
    assert w.status("SELECT NoSuchBox").startswith(b"NO")
    got = w.cmd("SELECT NoSuchBox")
    assert b"[NONEXISTENT]" in got[-1]
    assert w.status("select inbox") == b"OK"
    assert w.status("Uid Fetch 1:* (uid flags)") == b"OK"
    w.close()  # ten BADs in one session end it (RFC 3501 leaves this to the server), so go on in a new one
    w = Wire(srv.ports["imap"])
    w.cmd("SELECT INBOX")
    assert w.status("FETCH 1 (FLAGS") == b"BAD"
    assert w.status("FETCH 0 FLAGS") == b"BAD"  # §9: nz-number
    assert w.status("FETCH 1 BODY[]<0.0>") == b"BAD"  # §9: partial length is an nz-number
    assert w.status("FETCH 1 BODY[1.]") == b"BAD"
    assert w.status("FETCH 99999999999 FLAGS") == b"BAD"
    assert w.status("STORE 1 FLAGS") == b"BAD"
    assert w.status("COPY 1 NoSuchBox") == b"NO" and b"[TRYCREATE]" in w.cmd("COPY 1 NoSuchBox")[-1]
    assert w.status("UID FROB 1") == b"BAD" and w.status("UID LOGIN a b") == b"BAD"
    # §9 tag: any ASTRING-CHAR but "+": "]" and "[" are fine, "+" and "*" are not
    w.close()
    w = Wire(srv.ports["imap"])
    w.send(b"a]1[ NOOP\r\n")
    assert w.line().startswith(b"a]1[ OK")
    w.send(b"a+1 NOOP\r\n")
    assert w.line().startswith(b"* BAD")
    w.send(b"{x NOOP\r\n")  # not a tag
    assert w.line().startswith(b"* BAD")
    w.send(b"EXAMINE INBOX\r\n")  # "EXAMINE" is a valid tag: the command is then "INBOX"
    assert w.line().startswith(b"EXAMINE BAD")
    got = w.cmd("EXAMINE INBOX")
    assert got[-1].startswith(b"t") and b"[READ-ONLY]" in got[-1]
    assert w.status("STORE 1 +FLAGS (\\Seen)") == b"NO"  # §6.3.2: read-only
    assert w.status("EXPUNGE") == b"NO"
    w.close()


def test_mailbox_names_inbox_hierarchy_and_modified_utf7(srv):
    w = Wire(srv.ports["imap"])
    # §5.1: INBOX in any case is INBOX
    for name in ("inbox", "InBox", '"INBOX"'):
        got = w.cmd(f"STATUS {name} (MESSAGES)")
        assert got[0].startswith(b"* STATUS INBOX (MESSAGES "), got
    assert w.untagged(w.cmd('LIST "" inbox'), b"LIST") == [b'* LIST (\\HasNoChildren) "." INBOX\r\n']
    assert w.cmd('LIST "" ""')[0] == b'* LIST (\\Noselect) "." ""\r\n'  # §6.3.8: the hierarchy delimiter
    assert w.status("CREATE inbox") == b"NO" and w.status("DELETE INBOX") == b"NO"
    # §5.1.3: names travel in modified UTF-7 and are kept that way on disk (as Dovecot does)
    name = encode_mutf7("Entwürfe & 日本")
    assert name == "Entw&APw-rfe &- &ZeVnLA-"
    assert w.status(f'CREATE "{name}"') == b"OK"
    assert srv.has_folder(USER, name)  # the Maildir++ folder .<name>, or the row, under that name
    assert w.untagged(w.cmd('LIST "" "Entw*"'), b"LIST") == [
        b'* LIST (\\HasNoChildren) "." "Entw&APw-rfe &- &ZeVnLA-"\r\n']
    for bad in ('"Caf\xc3\xa9"'.encode("latin-1"), b'"AT&T"', b'"&AGE-"', b'"a%b"', b'"a*"', b'"a..b"'):
        assert w.cmd(b"CREATE " + bad)[-1].split()[1] == b"NO", bad
    # §6.3.3: superior names are created; % stops at the delimiter, * does not
    assert w.status("CREATE Work.2026.Q1.") == b"OK"  # a trailing delimiter only announces children
    listed = w.untagged(w.cmd('LIST "" "Work%"'), b"LIST")
    assert listed == [b'* LIST (\\HasChildren) "." Work\r\n']
    listed = w.untagged(w.cmd('LIST "" "Work*"'), b"LIST")
    assert [ln.rsplit(b" ", 1)[1] for ln in listed] == [b"Work\r\n", b"Work.2026\r\n", b"Work.2026.Q1\r\n"]
    listed = w.untagged(w.cmd('LIST "Work." "%"'), b"LIST")  # reference + pattern
    assert [ln.rsplit(b" ", 1)[1] for ln in listed] == [b"Work.2026\r\n"]
    # §6.3.9: LSUB "%" returns an unsubscribed parent of a subscribed name as \Noselect
    assert w.status("SUBSCRIBE Work.2026.Q1") == b"OK"
    assert w.untagged(w.cmd('LSUB "" "Work%"'), b"LSUB") == [b'* LSUB (\\Noselect) "." Work\r\n']
    assert w.untagged(w.cmd('LSUB "" "Work*"'), b"LSUB") == [b'* LSUB () "." Work.2026.Q1\r\n']
    # §6.3.5: RENAME renames the children too
    assert w.status("RENAME Work Job") == b"OK"
    listed = w.untagged(w.cmd('LIST "" "Job*"'), b"LIST")
    assert [ln.rsplit(b" ", 1)[1] for ln in listed] == [b"Job\r\n", b"Job.2026\r\n", b"Job.2026.Q1\r\n"]
    assert w.status("RENAME NoSuch Other") == b"NO" and w.status("RENAME Job Sent") == b"NO"
    w.close()


def test_rename_inbox_moves_its_messages_and_leaves_it_empty(srv):
    w = Wire(srv.ports["imap"])
    w.cmd("CREATE Holder")
    w.cmd("CREATE Holder.Child")
    n = int(re.search(rb"MESSAGES (\d+)", w.cmd("STATUS INBOX (MESSAGES)")[0]).group(1))
    assert n >= 2
    # move everything aside, then back, so the other tests still find their messages in INBOX
    assert w.status("RENAME INBOX Old-Inbox") == b"OK"
    assert w.cmd("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES 0)\r\n"  # §6.3.5: INBOX stays
    assert w.cmd("STATUS Old-Inbox (MESSAGES)")[0] == b"* STATUS Old-Inbox (MESSAGES %d)\r\n" % n
    w.cmd("SELECT Old-Inbox")
    got = w.cmd("MOVE 1:* INBOX")
    # RFC 6851 §3.3 / §4.3: COPYUID in an untagged OK first, then the EXPUNGEs, then the tagged OK
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 1:%d \d+:\d+\] .*\r\n" % n, got[0]), got
    assert got[1:-1] == [b"* %d EXPUNGE\r\n" % i for i in range(n, 0, -1)]
    assert got[-1].split()[1] == b"OK"
    assert w.cmd("STATUS INBOX (MESSAGES)")[0] == b"* STATUS INBOX (MESSAGES %d)\r\n" % n
    w.close()


def test_status_items(srv):
    w = Wire(srv.ports["imap"])
    got = w.cmd("STATUS INBOX (messages RECENT uidnext UIDVALIDITY unseen)")
    assert re.fullmatch(rb"\* STATUS INBOX \(MESSAGES \d+ RECENT \d+ UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN \d+\)\r\n",
                        got[0]), got
    # SIZE is an item since STATUS=SIZE (RFC 8438): an unknown item is still BAD
    assert w.status("STATUS INBOX (BOGUS)") == b"BAD" and w.status("STATUS INBOX ()") == b"BAD"
    assert w.status("STATUS Nope (MESSAGES)") == b"NO"
    w.close()


def test_append_with_flags_and_internaldate_then_uidplus(srv):
    c = imap(srv)
    c.create("Appended")
    uidnext = int(re.search(rb"UIDNEXT (\d+)", c.status("Appended", "(UIDNEXT)")[1][0]).group(1))
    c.select("Appended")
    msg = b"Subject: appended\r\n\r\nhello\r\n"
    typ, data = c.append("Appended", r"(\Flagged $Todo)", '" 5-Mar-2026 23:30:00 -0230"', msg)
    assert typ == "OK"
    validity, uid = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0]).groups()
    assert int(uid) == uidnext
    st = c.status("Appended", "(UIDVALIDITY)")[1][0]
    assert re.search(rb"UIDVALIDITY (\d+)", st).group(1) == validity
    typ, data = c.uid("FETCH", uid.decode(), "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    head = data[0][0]
    assert b'INTERNALDATE "06-Mar-2026 02:00:00 +0000"' in head  # 23:30 -0230 is 02:00 UTC the next day
    assert b"\\Flagged" in head and b"$Todo" in head and b"RFC822.SIZE %d" % len(msg) in head
    assert data[0][1] == msg
    # §6.3.11 / §9: a bad date-time or an unknown system flag is a syntax error, APPEND to nowhere asks TRYCREATE
    for flags, date in (("(\\Bogus)", None), (None, '"31-Foo-2026 00:00:00 +0000"')):
        with pytest.raises(c.error):
            c.append("Appended", flags, date, msg)
    c.logout()


def test_search_sets_charsets_and_keys(srv):
    w = Wire(srv.ports["imap"])
    w.cmd("EXAMINE INBOX")
    total = int(w.untagged(w.cmd("SEARCH ALL"), b"SEARCH")[0].split()[-1])
    assert w.cmd("SEARCH *")[0] == b"* SEARCH %d\r\n" % total
    assert w.cmd("SEARCH 1,*")[0] == b"* SEARCH 1 %d\r\n" % total
    assert w.cmd(f"SEARCH {total}:*")[0] == b"* SEARCH %d\r\n" % total
    assert w.cmd("SEARCH 999:*")[0] == b"* SEARCH %d\r\n" % total  # 999:* is *:999
    assert w.cmd("SEARCH 999")[0] == b"* SEARCH\r\n"
    assert w.cmd('search subject "GROUPS" not deleted')[0] != b"* SEARCH\r\n"  # keys are case-insensitive
    hit = w.cmd('SEARCH CHARSET UTF-8 HEADER Cc "smith, jo"')[0]
    assert hit != b"* SEARCH\r\n"
    w.send(b"s1 SEARCH CHARSET UTF-8 BODY {6}\r\n")
    assert w.line().startswith(b"+ ")
    w.send("déjà".encode()[:6] + b"\r\n")
    assert w.read_response(b"s1")[-1].startswith(b"s1 OK")
    # §6.4.4: an unknown charset is NO [BADCHARSET] with the list, even when its strings are not UTF-8
    got = w.cmd(b'SEARCH CHARSET ISO-8859-1 SUBJECT "caf\xe9"')
    assert got[-1].split()[1] == b"NO" and b"[BADCHARSET (US-ASCII UTF-8)]" in got[-1]
    assert w.status("SEARCH FROB") == b"BAD" and w.status("SEARCH") == b"BAD"
    assert w.status("SEARCH BEFORE 1-Foo-2026") == b"BAD"
    assert w.status("SEARCH OR SEEN") == b"BAD"
    assert w.status("SEARCH (SEEN UNSEEN") == b"BAD"
    w.close()


def test_fetch_sections_of_nested_parts(srv):
    c = imap(srv)
    c.select("INBOX", readonly=True)
    seq = c.search(None, "SUBJECT", "nested")[1][0].split()[0].decode()
    whole = c.fetch(seq, "(BODY.PEEK[])")[1][0][1]
    assert whole.endswith(crlf(NESTED))  # delivery prepended Return-Path, Delivered-To, Received

    def get(item: str) -> tuple[bytes, bytes]:
        typ, data = c.fetch(seq, f"({item})")
        assert typ == "OK", data
        return data[0][0], data[0][1]

    head, body = get("BODY.PEEK[]<7.30>")
    assert body == whole[7:37] and head.endswith(b"BODY[]<7> {30}")
    assert get("BODY.PEEK[]<99999.10>")[1] == b""  # §6.4.5: past the end is an empty string
    head, body = get("BODY.PEEK[HEADER.FIELDS (subject IN-REPLY-TO x-none)]")
    assert body == b"Subject: nested\r\nIn-Reply-To: <alt@else.test>\r\n\r\n"
    assert b"BODY[HEADER.FIELDS (SUBJECT IN-REPLY-TO X-NONE)]" in head
    body = get("BODY.PEEK[HEADER.FIELDS.NOT (Received Return-Path Delivered-To From To Subject Date Message-ID"
               " In-Reply-To)]")[1]
    assert body == b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    assert get("BODY.PEEK[1.MIME]")[1] == b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    assert get("BODY.PEEK[1.2.MIME]")[1] == b"Content-Type: text/html\r\n\r\n"
    assert get("BODY.PEEK[1.1]")[1] == b"inner plain"
    assert get("BODY.PEEK[2.TEXT]")[1] == b"forwarded body\r\nline two"
    assert get("BODY.PEEK[2.HEADER.FIELDS (Subject)]")[1] == b"Subject: forwarded\r\n\r\n"
    assert get("BODY.PEEK[2.1]")[1] == b"forwarded body\r\nline two"
    assert get("BODY.PEEK[3]<2.4>")[1] == b"BERi"
    assert get("BODY.PEEK[TEXT]")[1] == whole.split(b"\r\n\r\n", 1)[1]
    assert get("BODY.PEEK[9]")[1] == b""
    c.logout()


def test_envelope_groups(srv):
    c = imap(srv)
    c.select("INBOX", readonly=True)
    seq = c.search(None, "SUBJECT", "groups")[1][0].split()[0].decode()
    head = c.fetch(seq, "(ENVELOPE)")[1][0]
    assert (b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))'
            b' ((NIL NIL "Team" NIL)("Smith, Jo" NIL "jo" "else.test")(NIL NIL "kim" "else.test")(NIL NIL NIL NIL)'
            b'(NIL NIL "solo" "else.test"))') in head, head
    c.logout()


def test_curl_fetches_a_uid_and_lists(srv):
    c = imap(srv)
    c.select("INBOX", readonly=True)
    uid = c.uid("SEARCH", None, "SUBJECT", "nested")[1][0].split()[0].decode()
    c.logout()
    url = f"imap://127.0.0.1:{srv.ports['imap']}"
    out = subprocess.run(["curl", "-sS", "--user", f"{USER}:{PASSWORD}", url + f"/INBOX/;UID={uid}/;SECTION=HEADER"],
                         capture_output=True, timeout=30, check=True).stdout
    assert b"Subject: nested\r\n" in out
    out = subprocess.run(["curl", "-sS", "--user", f"{USER}:{PASSWORD}", url + "/", "-X", 'LIST "" "%"'],
                         capture_output=True, timeout=30, check=True).stdout
    assert b'* LIST (\\HasNoChildren \\Sent) "." Sent' in out
