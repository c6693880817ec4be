"""Scenario 53: Dovecot and courrier over the same Maildir (data_dir/mail/<domain>/<user>).

Dovecot lists and fetches what courrier delivered — the same bytes, and the same ENVELOPE and BODYSTRUCTURE for
multipart, nested and non-ASCII messages — and courrier serves a message Dovecot wrote, with the flags Dovecot set.
"""

from __future__ import annotations

import imaplib
import re

import pytest

from tests.access.clients import PASSWORD, USER, deliver, imap, wait_for
from tests.access.dovecot import Dovecot
from tests.access.messages import ALL

pytestmark = pytest.mark.local_store("Dovecot reads and writes the same Maildir: about the local store's "
                                      "layout by nature")


@pytest.fixture
def both(server_factory, tmp_path):
    s = server_factory(listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    for data in ALL.values():
        deliver(s, data)
    c = imap(s)  # the first login creates the special-use folders
    c.logout()
    dv = Dovecot(tmp_path / "dovecot", s.maildir(USER)).start()
    yield s, dv
    dv.stop()


def item(line: bytes, name: bytes) -> bytes:
    """The value of FETCH item ``name`` in ``line``: a number, or a parenthesized list (quotes respected)."""
    i = line.index(name + b" ") + len(name) + 1
    if line[i:i + 1] != b"(":
        return re.match(rb"\d+", line[i:]).group(0)
    depth, quoted, j = 0, False, i
    while True:
        c = line[j:j + 1]
        if quoted:
            if c == b"\\":
                j += 1
            elif c == b'"':
                quoted = False
        elif c == b'"':
            quoted = True
        elif c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth == 0:
                return line[i:j + 1]
        j += 1


def structure(c: imaplib.IMAP4) -> dict[bytes, tuple[bytes, bytes, bytes]]:
    """Message-ID → (RFC822.SIZE, ENVELOPE, BODYSTRUCTURE), whatever order the server numbers messages in."""
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", "(RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
    assert typ == "OK", data
    out = {}
    for line in data:
        env = item(line, b"ENVELOPE")
        mid = re.search(rb'"(<[^"]+>)"\)$', env).group(1)
        out[mid] = (item(line, b"RFC822.SIZE"), env, item(line, b"BODYSTRUCTURE"))
    return out


def test_dovecot_reads_what_courrier_delivered(both):
    s, dv = both
    ours, theirs = imap(s), imaplib.IMAP4("127.0.0.1", dv.port, timeout=10)
    theirs.login(USER, "secret")
    listed = b" ".join(theirs.list()[1])
    for name in (b"INBOX", b"Sent", b"Trash", b"Drafts", b"Junk"):
        assert name in listed
    a, b = structure(ours), structure(theirs)
    assert len(a) == len(ALL) and a == b
    for spec in ("BODY.PEEK[]", "BODY.PEEK[1]", "BODY.PEEK[2.HEADER]", "BODY.PEEK[1.MIME]", "BODY.PEEK[TEXT]<3.40>",
                 "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"):
        x = {d[1] for d in ours.fetch("1:*", f"({spec})")[1] if isinstance(d, tuple)}
        y = {d[1] for d in theirs.fetch("1:*", f"({spec})")[1] if isinstance(d, tuple)}
        assert x == y, spec
    ours.logout()
    theirs.logout()


def test_courrier_reads_what_dovecot_wrote(both):
    s, dv = both
    theirs = imaplib.IMAP4("127.0.0.1", dv.port, timeout=10)
    theirs.login(USER, "secret")
    msg = b"From: dovecot@else.test\r\nSubject: written by dovecot\r\n\r\nhello from dovecot\r\n"
    assert theirs.append("INBOX", r"(\Flagged)", None, msg)[0] == "OK"
    theirs.select("INBOX")
    theirs.store("1", "+FLAGS", r"(\Seen \Answered)")
    theirs.logout()
    ours = imap(s)
    ours.select("INBOX")
    seq = ours.search(None, "SUBJECT", '"written by dovecot"')[1][0]
    assert seq
    typ, data = ours.fetch(seq.decode(), "(FLAGS BODY.PEEK[])")
    assert data[0][1] == msg and b"\\Flagged" in data[0][0]
    typ, data = ours.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"\\Answered" in data[0]
    # and a change Dovecot makes while courrier's session is open shows up at the next NOOP
    theirs = imaplib.IMAP4("127.0.0.1", dv.port, timeout=10)
    theirs.login(USER, "secret")
    theirs.select("INBOX")
    theirs.store("1", "-FLAGS", r"(\Answered)")
    theirs.logout()

    def seen_update():
        ours.noop()
        return any(b"\\Answered" not in f for f in ours.untagged_responses.pop("FETCH", []))

    wait_for(seen_update, what="courrier to notice Dovecot's flag change")
    ours.logout()


def test_dovecot_and_courrier_share_keywords_through_the_maildir(server_factory, tmp_path):
    """Issue 16: keywords courrier stores are letters in the Maildir file names, named by ``dovecot-keywords``:
    Dovecot (its control files in the Maildir, its default) shows them, and a keyword Dovecot sets shows in courrier."""
    s = server_factory(listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    for i in range(3):
        deliver(s, f"Subject: k{i}\r\nMessage-ID: <k{i}@else.test>\r\n\r\nbody\r\n".encode())
    ours = imap(s)
    ours.select("INBOX")
    assert ours.store("1", "+FLAGS", "($Work Later)")[0] == "OK"
    assert ours.store("2", "+FLAGS", "(Later \\Seen)")[0] == "OK"
    ours.logout()
    dv = Dovecot(tmp_path / "dovecot-kw", s.maildir(USER), control_in_maildir=True).start()
    try:
        theirs = imaplib.IMAP4("127.0.0.1", dv.port, timeout=10)
        theirs.login(USER, "secret")
        theirs.select("INBOX")
        typ, data = theirs.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        flags = {re.search(rb"<(k\d)@", d[1]).group(1).decode(): re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).split()
                 for d in data if isinstance(d, tuple)}
        assert set(flags["k0"]) >= {b"$Work", b"Later"}, flags
        assert set(flags["k1"]) >= {b"Later", b"\\Seen"} and b"$Work" not in flags["k1"], flags
        assert b"Later" not in flags["k2"] and b"$Work" not in flags["k2"], flags
        # Dovecot sets a keyword of its own, and drops one of ours
        seq = next(str(i) for i, d in enumerate((d for d in data if isinstance(d, tuple)), 1) if b"<k2@" in d[1])
        assert theirs.store(seq, "+FLAGS", "(FromDovecot)")[0] == "OK"
        seq0 = next(str(i) for i, d in enumerate((d for d in data if isinstance(d, tuple)), 1) if b"<k0@" in d[1])
        assert theirs.store(seq0, "-FLAGS", "(Later)")[0] == "OK"
        theirs.logout()
    finally:
        dv.stop()
    ours = imap(s)
    ours.select("INBOX")

    def flags_of(mid: str) -> bytes:
        seq = ours.search(None, "HEADER", "Message-ID", f"<{mid}@else.test>")[1][0].decode()
        return ours.fetch(seq, "(FLAGS)")[1][0]

    wait_for(lambda: b"FromDovecot" in flags_of("k2"), what="courrier to read Dovecot's keyword letter")
    assert b"Later" not in flags_of("k0") and b"$Work" in flags_of("k0")
    ours.logout()
