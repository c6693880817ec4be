"""Scenario 56b: ENVELOPE addresses and SEARCH address keys over imaplib against `courrier serve` — imaptest's
fetch-envelope and search-addresses cases (issue 11 item 12), and the forms around them.

RFC 3501 §7.4.2: an empty Sender/Reply-To is given the From value; address structures are (name adl mailbox host),
the adl keeping an obsolete source route (RFC 5322 §4.4); groups are framed by (NIL NIL name NIL)…(NIL NIL NIL NIL).
Comments are removed from addresses; a mailbox written without a display name takes its comment as name (Dovecot).
SEARCH FROM/TO/CC/BCC match the addresses as the ENVELOPE has them (``Name <user@host>``, groups ``g: a, b;``).
"""

from __future__ import annotations

import time

import pytest

from tests.access.clients import PASSWORD, USER, imap

ENVELOPES = [  # imaptest src/tests/fetch-envelope.mbox, one message each: (message, its ENVELOPE)
    (b"Message-ID: <msg@id>\nIn-Reply-To: <reply@to.id>\nDate: Sat, 01 Feb 2007 01:02:03 +0200\n"
     b"Subject: subject header\nFrom: From Real <fromuser@fromdomain.org>\nTo: To Real <touser@todomain.org>\n"
     b"Cc: Cc Real <ccuser@ccdomain.org>\nBcc: Bcc Real <bccuser@bccdomain.org>\n"
     b"Sender: Sender Real <senderuser@senderdomain.org>\nReply-To: ReplyTo Real <replytouser@replytodomain.org>\n"
     b"\nbody\n",
     b'("Sat, 01 Feb 2007 01:02:03 +0200" "subject header" (("From Real" NIL "fromuser" "fromdomain.org"))'
     b' (("Sender Real" NIL "senderuser" "senderdomain.org")) (("ReplyTo Real" NIL "replytouser" "replytodomain.org"))'
     b' (("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org"))'
     b' (("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>")'),
    (b"Date: Sat, 01 Feb 2007 01:02:03 +0200\nFrom: user@domain\n\nbody\n",
     b'("Sat, 01 Feb 2007 01:02:03 +0200" NIL ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain"))'
     b' ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL)'),
    (b"Date: Sat, 01 Feb 2007 01:02:03 +0200\nFrom: user@domain (Real Name)\n"
     b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n\nbody\n",
     b'("Sat, 01 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain"))'
     b' (("Real Name" NIL "user" "domain")) ((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")'
     b'(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) NIL NIL NIL NIL)'),
    (b"Date: Sat, 01 Feb 2007 01:02:03 +0200\nFrom: user@domain (Real Name)\nSender: \nReply-To: \n\nbody\n",
     b'("Sat, 01 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain"))'
     b' (("Real Name" NIL "user" "domain")) NIL NIL NIL NIL NIL)'),
    (b"Date: Sat, 01 Feb 2007 01:02:03 +0200\nFrom: <@route:user@domain>\n\nbody\n",
     b'("Sat, 01 Feb 2007 01:02:03 +0200" NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain"))'
     b' ((NIL "@route" "user" "domain")) NIL NIL NIL NIL NIL)'),
    # around imaptest's cases (each checked against Dovecot 2.3)
    (b"From: <@a,@b:u@h> (route list)\nSender: (only a comment)\nReply-To: ,\nTo: <user (c1)@ (c2) host>,,\n"
     b"Cc: \"a b\"@x.test, \"Q; R\" (c) <q@x.test>, A.B <ab@x.test>\nBcc: =?utf-8?q?Ren=C3=A9e?= <r@x.test>,"
     b" team:;, bob, <>\n\nbody\n",
     b'(NIL NIL ((NIL "@a,@b" "u" "h")) ((NIL "@a,@b" "u" "h")) ((NIL "@a,@b" "u" "h")) ((NIL NIL "user" "host"))'
     b' ((NIL NIL "a b" "x.test")("Q; R" NIL "q" "x.test")("A.B" NIL "ab" "x.test"))'
     b' (("=?utf-8?q?Ren=C3=A9e?=" NIL "r" "x.test")(NIL NIL "team" NIL)(NIL NIL NIL NIL)'
     b'(NIL NIL "bob" "MISSING_DOMAIN")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) NIL NIL)'),
]

SEARCHED = [  # imaptest src/tests/search-addresses.mbox
    b"From: user-from@domain.org\nTo: user-to@domain.org\nCc: user-cc@domain.org\nBcc: user-bcc@domain.org\n\nbody\n",
    b"From: RealFrom <user-from@domain.org>\nTo: RealTo <user-to@domain.org>\nCc: RealCc <user-cc@domain.org>\n"
    b"Bcc: RealBcc <user-bcc@domain.org>\n\nbody2\n",
    b"From: <user-from (comment)@ (comment) domain.org>\nTo: <user-to@domain.org>\nCc: <user-cc@domain.org>\n"
    b"Bcc: <user-bcc@domain.org>\n\nbody3\n",
    b"From: user-from@domain.org (RealFrom)\nTo: user-to@domain.org (RealTo)\nCc: user-cc@domain.org (RealCc)\n"
    b"Bcc: user-bcc@domain.org (RealBcc)\n\nbody4\n",
    b"From: user-from1@domain.org, user-from2@domain.org\nCc: user-cc@domain.org\n\nbody5\n",
    b"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\n  groupname2: groupuser3@domain.org;\n\nbody5\n",
    # around imaptest's cases
    b"From: =?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?= <renee@x.test>\nTo: <@relay.test:route@x.test>\n\nbody7\n",
]
SEARCHES = [  # imaptest src/tests/search-addresses: (keys, expected sequence numbers)
    (["FROM", "user-from@domain.org"], "1 2 3 4"), (["TO", "user-to@domain.org"], "1 2 3 4"),
    (["CC", "user-cc@domain.org"], "1 2 3 4 5"), (["BCC", "user-bcc@domain.org"], "1 2 3 4"),
    (["FROM", "realfrom"], "2 4"), (["TO", "realto"], "2 4"), (["CC", "realcc"], "2 4"), (["BCC", "realbcc"], "2 4"),
    (["HEADER", "FROM", '""'], "1 2 3 4 5 7"), (["HEADER", "TO", '""'], "1 2 3 4 6 7"),
    (["HEADER", "CC", '""'], "1 2 3 4 5"), (["HEADER", "BCC", '""'], "1 2 3 4"),
    (["FROM", "ser-fro"], "1 2 3 4 5"), (["TO", "ser-t"], "1 2 3 4"), (["CC", "ser-c"], "1 2 3 4 5"),
    (["BCC", "ser-bc"], "1 2 3 4"),
    (["FROM", "ealfro"], "2 4"), (["TO", "ealt"], "2 4"), (["CC", "ealc"], "2 4"), (["BCC", "ealbc"], "2 4"),
    (["FROM", "user-from1"], "5"), (["FROM", "user-from2"], "5"),
    (["TO", "groupname"], "6"), (["TO", "groupname2"], "6"), (["TO", "groupuser1"], "6"), (["TO", "groupuser2"], "6"),
    (["TO", "groupuser3"], "6"), (["TO", "groupuser4"], ""),
    # the address as the envelope has it: comments gone, "Name <addr>", the route kept, names decoded
    (["FROM", '"RealFrom <user-from@domain.org>"'], "2 4"), (["FROM", "comment"], ""),
    (["TO", '"groupname: groupuser1@domain.org, groupuser2@domain.org;"'], "6"),
    (["TO", "@relay.test:route@x.test"], "7"), (["FROM", '"Dupr\u00e9 <renee"'], "7"),
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("imap56b"), listeners=("imap",))
    s.add_user(USER, PASSWORD)
    s.start()
    c = imap(s)
    for box, msgs in (("Envelopes", [m for m, _ in ENVELOPES]), ("Searched", SEARCHED)):
        assert c.create(box)[0] == "OK"
        for m in msgs:
            assert c.append(box, None, None, m.replace(b"\n", b"\r\n"))[0] == "OK"
    c.logout()
    yield s
    s.stop()


def test_fetch_envelope(srv):
    c = imap(srv)
    c.select("Envelopes", readonly=True)
    typ, data = c.fetch("1:*", "(ENVELOPE)")
    assert typ == "OK"
    got = [d if isinstance(d, bytes) else b"".join(d) for d in data]
    for i, (_, expected) in enumerate(ENVELOPES, 1):
        assert got[i - 1] == b"%d (ENVELOPE %s)" % (i, expected), i
    c.logout()


@pytest.mark.parametrize("keys,expected", SEARCHES, ids=[" ".join(k) for k, _ in SEARCHES])
def test_search_addresses(srv, keys, expected):
    c = imap(srv)
    c.select("Searched", readonly=True)
    needle = keys[-1]
    if not needle.isascii():
        c.literal = needle.strip('"').encode()
        typ, data = c.search("UTF-8", *keys[:-1])
    else:
        typ, data = c.search(None, *keys)
    assert (typ, data[0].decode()) == ("OK", expected)
    c.logout()


def test_address_parsing_is_bounded(srv):
    """10,000 nested comments and 20,000 addresses in folded fields: ENVELOPE and SEARCH answer at once, with what
    the bounds allow (10,000 addresses per field), and the server stays up."""
    deep = b"From: a@b.test " + b"(\r\n " * 10_000 + b"x\r\n"
    wide = b"To: " + b",\r\n ".join(b",".join(b"u%d@x.test" % (i + j) for j in range(20))
                                     for i in range(0, 20_000, 20)) + b"\r\n"
    c = imap(srv)
    assert c.create("Bounded")[0] == "OK"
    assert c.append("Bounded", None, None, deep + wide + b"Subject: bounded\r\n\r\nbody\r\n")[0] == "OK"
    c.select("Bounded", readonly=True)
    t = time.monotonic()
    typ, data = c.fetch("1", "(ENVELOPE)")
    env = b"".join(d if isinstance(d, bytes) else b"".join(d) for d in data)  # a literal splits the answer
    assert typ == "OK" and b' NIL "a" "b.test")' in env and env.count(b'"x.test")') == 10_000  # the comment names it
    assert c.search(None, "TO", "u19999@x.test") == ("OK", [b""])  # past MAX_ADDRESSES: not read
    assert c.search(None, "TO", "u9999@x.test") == ("OK", [b"1"])
    assert time.monotonic() - t < 5
    assert c.noop()[0] == "OK"
    c.logout()
    assert srv.stored(USER, "Bounded")
