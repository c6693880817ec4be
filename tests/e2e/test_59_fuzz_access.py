"""Scenario 59: random and malformed input to live IMAP and POP3 sessions of `courrier serve` never crashes the
server, never hangs a session, and is always answered — IMAP with a tagged BAD/NO (or OK when the noise happens to
be valid), POP3 with -ERR; every reason is readable text. Afterwards the server still serves a fresh session and
its log holds no traceback and no internal error. Deterministic: fixed seeds."""

from __future__ import annotations

import random
import socket

import pytest

from tests.access.clients import PASSWORD, USER, server_with_corpus

TIMEOUT = 5.0  # a reply slower than this counts as a hang
ATOMS = ["FETCH", "UID", "STORE", "SEARCH", "COPY", "MOVE", "LIST", "LSUB", "STATUS", "APPEND", "SELECT",
         "EXAMINE", "CREATE", "RENAME", "DELETE", "EXPUNGE", "CLOSE", "NOOP", "CHECK", "ENABLE", "ID", "NAMESPACE",
         "SUBSCRIBE", "UNSELECT", "CAPABILITY"]
ARGS = ["1", "*", "1:*", "0", "4294967296", "2,4:*", "*:1", "1:", ":", ",", "BODY[]", "BODY.PEEK[1.2.MIME]",
        "BODY[HEADER.FIELDS (FROM", "BODY[HEADER.FIELDS ()]", "BODY[1.TEXT]<0.5>", "BODY[]<5>", "RFC822.SIZE",
        "(FLAGS ENVELOPE BODYSTRUCTURE)", "(", ")", "((((((((((", '"', '""', '"a\\"b"', '"\\q"', "NIL", "INBOX",
        "Trash", '"&AGE-"', "&", "%", "*", "+FLAGS", "-FLAGS.SILENT", "FLAGS", "(\\Seen \\Bogus)", "(\\Recent)",
        "($kw)", "CHARSET", "UTF-8", "KOI8-R", "OR", "NOT", "HEADER", "SINCE", "1-Jan-2020", "31-Feb-2020",
        "LARGER", "-1", "UID", "(MESSAGES UIDNEXT)", "(BOGUS)", "\x7f", "\x01", "é", "\xff", "[", "]", "<1.2>",
        "ALL", "FULL", "FAST", "BODY", "BINARY[1]", "()"]


ITEMS = ["FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.HEADER",
         "BODY.PEEK[]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[2.1]", "BODY.PEEK[1.MIME]", "BODY.PEEK[3.MIME]",
         "BODY.PEEK[2.HEADER]", "BODY.PEEK[2.TEXT]<1.3>", "BODY.PEEK[9.9.9]", "BODY.PEEK[HEADER.FIELDS (To Cc)]",
         "BODY.PEEK[1.2.HEADER.FIELDS.NOT (X)]", "BODY.PEEK[]<3.7>", "BODY.PEEK[]<99999.1>"]
KEYS = ["ALL", "SEEN", "UNSEEN", "NEW", "OLD", "RECENT", "DELETED", "FLAGGED", "KEYWORD $kw", "SUBJECT nested",
        'BODY "plain"', "TEXT é", "FROM carol", "TO bob", "CC x", "BCC x", "HEADER Message-ID @", 'HEADER X ""',
        "BEFORE 1-Jan-2030", "SINCE 1-Jan-2000", "ON 2-Mar-2026", "SENTSINCE 1-Mar-2026", "SENTBEFORE 1-Jan-1970",
        "LARGER 100", "SMALLER 100000", "UID 1:*", "2:*", "*", "1,3", "UNKEYWORD $kw", "DRAFT", "UNDRAFT", "ANSWERED"]


def set_(rnd: random.Random) -> str:
    return rnd.choice(["1", "2", "*", "1:*", "2:4", "*:2", "3,1", "1:2,4:*", "9:*", "5"])


def imap_valid(rnd: random.Random) -> str:
    """A well-formed command with random arguments: reaches FETCH/SEARCH/STORE/COPY code, not only the parser."""
    k = rnd.randrange(7)
    uid = "UID " if rnd.random() < 0.4 else ""
    if k == 0:
        return f"{uid}FETCH {set_(rnd)} ({' '.join(rnd.sample(ITEMS, rnd.randint(1, 4)))})"
    if k == 1:
        key = " ".join(rnd.sample(KEYS, rnd.randint(1, 3)))
        key = rnd.choice([key, f"NOT {key}", f"OR ({key}) ALL", f"({key})", f"CHARSET UTF-8 {key}"])
        return f"{uid}SEARCH {key}"
    if k == 2:
        op = rnd.choice(["FLAGS", "+FLAGS", "-FLAGS", "+FLAGS.SILENT", "-FLAGS.SILENT"])
        flags = rnd.choice(["\\Seen", "\\Flagged $kw", "\\Deleted", ""])
        return f"{uid}STORE {set_(rnd)} {op} ({flags})"
    if k == 3:
        return f"{uid}{rnd.choice(['COPY', 'MOVE'])} {set_(rnd)} {rnd.choice(['Trash', 'INBOX', 'Junk'])}"
    if k == 4:
        return f'LIST "{rnd.choice(["", "INBOX.", "Tr"])}" "{rnd.choice(["*", "%", "%.%", "T*", "inbox"])}"'
    if k == 5:
        return rnd.choice(["EXPUNGE", "CHECK", "NOOP", f"UID EXPUNGE {set_(rnd)}", "STATUS Trash (MESSAGES UNSEEN)"])
    return rnd.choice(["SELECT INBOX", "EXAMINE INBOX", "SELECT Trash", "CREATE Fz.a", "DELETE Fz.a",
                       "RENAME Fz.a Fz.b", "RENAME Fz.b Fz.a", "SUBSCRIBE Trash", "NAMESPACE"])


def imap_noise(rnd: random.Random) -> bytes:
    kind = rnd.random()
    if kind < 0.35:
        return imap_valid(rnd).encode()
    if kind < 0.65:  # command-shaped: a verb (maybe UID) and random arguments
        words = (["UID"] if rnd.random() < 0.3 else []) + [rnd.choice(ATOMS)]
        words += [rnd.choice(ARGS) for _ in range(rnd.randint(0, 5))]
        text = " ".join(words)
        if rnd.random() < 0.3:
            text = text.lower()
        return text.encode("utf-8", "surrogateescape")
    if kind < 0.85:  # bytes: anything but CR and LF
        return bytes(rnd.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rnd.randint(0, 80)))
    return b"X" * rnd.randint(1000, 70_000)  # long lines, some beyond the line buffer


class ImapFuzzer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.n = 0
        self.connect()

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        assert self.exchange(f"LOGIN {USER} {PASSWORD}".encode()).startswith(b"OK")
        assert self.exchange(b"SELECT INBOX").startswith(b"OK")

    def exchange(self, body: bytes) -> bytes:
        """Sends one tagged line; returns the tagged status and text, or b"BYE" when the server ended the session.
        Continuation requests are answered: literal octets, DONE for IDLE, "*" to cancel AUTHENTICATE."""
        self.n += 1
        tag = b"f%d" % self.n
        self.sock.sendall(tag + b" " + body + b"\r\n")
        while True:
            try:
                ln = self.f.readline()
            except TimeoutError:
                raise AssertionError(f"no answer to {body[:100]!r}") from None
            if not ln or ln.startswith(b"* BYE"):
                return b"BYE"
            assert ln.endswith(b"\r\n"), ln
            if ln.startswith(tag + b" "):
                status = ln[len(tag) + 1:]
                assert status.split(b" ", 1)[0] in (b"OK", b"NO", b"BAD"), ln
                assert len(status.strip()) > 3, ln  # a reason comes with it
                return status
            if ln.startswith(b"+") and b"literal" in ln:  # a synchronizing literal: send its octets
                n = int(body[body.rindex(b"{") + 1:body.rindex(b"}")])
                self.sock.sendall(b"x" * n + b"\r\n")
            elif ln.startswith(b"+"):
                self.sock.sendall(b"DONE\r\n" if b"idling" in ln else b"*\r\n")
            elif b"{" in ln and ln.endswith(b"}\r\n"):
                self.f.read(int(ln[ln.rindex(b"{") + 1:-3]))


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = server_with_corpus(tmp_path_factory.mktemp("fuzz59"), ("smtp", "imap", "pop3"))
    yield s
    s.stop()


def assert_healthy(srv) -> None:
    assert srv.proc.poll() is None, "courrier serve died"
    log = srv.log()
    assert "Traceback" not in log and " imap.bug " not in log and " pop3.bug " not in log, log[-3000:]


def test_imap_survives_random_and_malformed_commands(srv):
    rnd = random.Random(3501)
    fz = ImapFuzzer(srv.ports["imap"])
    statuses = {b"OK": 0, b"NO": 0, b"BAD": 0, b"BYE": 0}
    for _ in range(500):
        got = fz.exchange(imap_noise(rnd))
        statuses[got.split(b" ", 1)[0]] += 1
        if got == b"BYE":  # LOGOUT, too many errors or an endless line: a new session, as a client would
            fz.sock.close()
            fz.connect()
    assert statuses[b"BAD"] > 100 and statuses[b"OK"] > 100, statuses
    # literals: announced, sent short, sent long, non-synchronizing with junk after
    for body in (b"LOGIN {3}", b"SEARCH TEXT {5+}\r\nab\r\ncd", b"SELECT {0}", b"CREATE {2+}\r\n\x00\xff",
                 b"SEARCH {99999999}", b"STATUS {4+}\r\nINBX (MESSAGES)"):
        got = fz.exchange(body)
        if got == b"BYE":
            fz.sock.close()
            fz.connect()
    assert fz.exchange(b"NOOP").startswith(b"OK")
    assert_healthy(srv)


def test_pop3_survives_random_and_malformed_commands(srv):
    rnd = random.Random(1939)
    verbs = [b"USER", b"PASS", b"STAT", b"LIST", b"RETR", b"DELE", b"RSET", b"TOP", b"UIDL", b"NOOP", b"CAPA",
             b"AUTH", b"APOP", b"XTND", b"LAST"]

    def connect():  # noqa: ANN202
        sock = socket.create_connection(("127.0.0.1", srv.ports["pop3"]), timeout=TIMEOUT)
        f = sock.makefile("rb")
        assert f.readline().startswith(b"+OK")
        return sock, f

    sock, f = connect()
    logged_in = False
    for i in range(500):
        r = rnd.random()
        if r < 0.6:
            line = rnd.choice(verbs) + b" " + b" ".join(rnd.choice([b"1", b"0", b"-1", b"99", b"x", b"1 0", b"\xff",
                                                                    b"PLAIN", b"*", b"=", USER.encode(), b""])
                                                        for _ in range(rnd.randint(0, 3)))
        elif r < 0.9:
            line = bytes(rnd.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rnd.randint(0, 60)))
        else:
            line = b"Z" * rnd.randint(300, 90_000)
        if i % 50 == 0 and not logged_in:
            sock.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
            assert f.readline().startswith(b"+OK")
            logged_in = f.readline().startswith(b"+OK")
            assert logged_in
        sock.sendall(line + b"\r\n")
        first = f.readline()
        if not first:
            sock.close()
            sock, f = connect()
            logged_in = False
            continue
        assert first.startswith((b"+OK", b"-ERR", b"+ ")), (line[:60], first)
        if first.startswith(b"-ERR"):
            assert len(first.strip()) > 5, first
            if b"too many errors" in first:
                sock.close()
                sock, f = connect()
                logged_in = False
        elif first.startswith(b"+ "):  # AUTH PLAIN waiting for its response: cancel it
            sock.sendall(b"*\r\n")
            assert f.readline().startswith(b"-ERR")
        elif b"follows" in first or line.strip().upper() == b"AUTH":  # a multi-line answer: read to its end
            while f.readline() not in (b".\r\n", b""):
                pass
        if line.upper().startswith(b"QUIT"):
            sock.close()
            sock, f = connect()
            logged_in = False
    sock.close()
    sock, f = connect()
    sock.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nQUIT\r\n".encode())
    assert [f.readline()[:3] for _ in range(4)] == [b"+OK"] * 4
    sock.close()
    assert_healthy(srv)
