"""Scenario 07: a client that pipelines its last commands and shuts down its write side (half-close).

Exim ends a delivery by pipelining the end of the message (``.`` or ``BDAT n LAST``) with QUIT, then calls
shutdown(SHUT_WR) and reads the replies. Every complete command received before the EOF must still be executed
and answered, in order (RFC 5321 §4.1.1.10, §4.2; RFC 2920 §3.1): a message delivered without its 250 is sent
again by the client, and the recipient gets copies. What is *not* complete is never acted on: a DATA payload
without its end marker is not delivered, an unterminated last line is not executed.

Raw sockets on loopback against a real ``courrier serve``: MX and submission roles, DATA and BDAT, with and
without QUIT; then POP3 and IMAP commands pipelined before a half-close.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid

import pytest

from tests.support import Server

BOB, CAROL, DAVE = "bob@example.test", "carol@example.test", "dave@example.test"
PASSWORD = "secret"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("halfclose"), listeners=("smtp", "submission", "pop3", "imap"))
    for user in (BOB, CAROL, DAVE):
        s.add_user(user, PASSWORD)
    s.start()
    yield s
    s.stop()


class Conn:
    """A raw client socket: interactive replies first, then a pipelined tail and shutdown(SHUT_WR)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; pending {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self) -> int:
        """One SMTP reply (multi-line ones included) → its code."""
        while True:
            ln = self._line()
            if ln[3:4] != b"-":
                return int(ln[:3])

    def cmd(self, line: str) -> int:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def half_close(self, tail: bytes) -> bytes:
        """Sends ``tail`` in one write, shuts down the write side, returns everything the server sends until it
        closes the connection (a server that never closes fails the test with a timeout)."""
        self.sock.sendall(tail)
        self.sock.shutdown(socket.SHUT_WR)
        out = self.buf
        while chunk := self.sock.recv(65536):
            out += chunk
        self.sock.close()
        return out


def codes(wire: bytes) -> list[int]:
    """The code of each SMTP reply in ``wire`` (the last line of a multi-line reply)."""
    return [int(ln[:3]) for ln in wire.split(b"\r\n") if ln[3:4] == b" "]


def message(subject: str, size: int = 0, sender: str = "alice@else.test") -> bytes:
    body = b"".join(b"line %06d of the body\r\n" % i for i in range(size // 24 + 1))
    return (f"From: {sender}\r\nTo: {BOB}\r\nSubject: {subject}\r\n\r\n").encode() + body


def copies(srv: Server, subject: str, account: str = BOB) -> int:
    return sum(1 for m in srv.parsed(account) if m["Subject"] == subject)


def open_session(srv: Server, role: str) -> Conn:
    """Greeting and EHLO (and AUTH on the submission role) answered one by one, as Exim does."""
    c = Conn(srv.ports[role])
    assert c.reply() == 220
    assert c.cmd("EHLO client.example") == 250
    if role == "submission":
        token = base64.b64encode(f"\0{CAROL}\0{PASSWORD}".encode()).decode()
        assert c.cmd(f"AUTH PLAIN {token}") == 235
    return c


def sender(role: str) -> str:
    return CAROL if role == "submission" else "alice@else.test"


def send_once(srv: Server, role: str, verb: str, quit: bool, subject: str) -> list[int]:
    """One delivery attempt ending with a pipelined end of message (+ QUIT) and a half-close; the reply codes
    read after the half-close."""
    c = open_session(srv, role)
    msg = message(subject, sender=sender(role))
    envelope = f"MAIL FROM:<{sender(role)}>\r\nRCPT TO:<{BOB}>\r\n".encode()
    if verb == "DATA":
        # RFC 2920 §3.1: the client waits for the 354, then sends the text, the dot and QUIT in one go
        c.sock.sendall(envelope + b"DATA\r\n")
        assert [c.reply(), c.reply(), c.reply()] == [250, 250, 354]
        tail = msg + b".\r\n"
    else:  # RFC 3030: BDAT needs no 354, the whole transaction is one pipelined group
        tail = envelope + b"BDAT %d LAST\r\n" % len(msg) + msg
    return codes(c.half_close(tail + (b"QUIT\r\n" if quit else b"")))


@pytest.mark.parametrize("role", ["smtp", "submission"])
@pytest.mark.parametrize("verb", ["DATA", "BDAT"])
@pytest.mark.parametrize("quit", [True, False], ids=["quit", "no-quit"])
def test_replies_survive_a_half_close(srv, role, verb, quit):
    subject = f"half-close {role} {verb} {quit} {uuid.uuid4()}"
    got = send_once(srv, role, verb, quit, subject)
    end_of_message = [250] if verb == "DATA" else [250, 250, 250]  # BDAT: MAIL, RCPT, then the LAST chunk
    assert got == end_of_message + ([221] if quit else [])
    assert copies(srv, subject) == 1


@pytest.mark.parametrize("role", ["smtp", "submission"])
def test_a_retrying_client_delivers_exactly_once(srv, role):
    """The client's side of the story: no 250 → it tries again (RFC 5321 §4.5.4.1). One copy, one attempt."""
    subject = f"exactly once {role} {uuid.uuid4()}"
    attempts = 0
    while attempts < 3:
        attempts += 1
        if 250 in send_once(srv, role, "DATA", True, subject):
            break
    time.sleep(0.3)  # a late duplicate would have landed by now
    assert (attempts, copies(srv, subject)) == (1, 1)


def test_everything_in_one_write_then_half_close(srv):
    """Even a client that does not wait for the 354 gets every reply in order."""
    subject = f"one write {uuid.uuid4()}"
    c = Conn(srv.ports["smtp"])
    out = c.half_close(b"EHLO client.example\r\nMAIL FROM:<alice@else.test>\r\nRCPT TO:<" + BOB.encode() +
                       b">\r\nDATA\r\n" + message(subject, 200_000) + b".\r\nNOOP\r\nQUIT\r\n")
    assert codes(out) == [220, 250, 250, 250, 354, 250, 250, 221]
    assert copies(srv, subject) == 1


@pytest.mark.parametrize("role", ["smtp", "submission"])
def test_eof_inside_data_delivers_nothing(srv, role):
    subject = f"cut in DATA {role} {uuid.uuid4()}"
    c = open_session(srv, role)
    c.sock.sendall(f"MAIL FROM:<{sender(role)}>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n".encode())
    assert [c.reply(), c.reply(), c.reply()] == [250, 250, 354]
    out = c.half_close(message(subject, sender=sender(role)) + b"the end marker never comes\r\n.")
    assert codes(out) == []  # no 250 for a message that was not complete
    time.sleep(0.3)
    assert copies(srv, subject) == 0


def test_eof_inside_a_bdat_chunk_delivers_nothing(srv):
    subject = f"cut in BDAT {uuid.uuid4()}"
    c = open_session(srv, "smtp")
    msg = message(subject)
    out = c.half_close(f"MAIL FROM:<alice@else.test>\r\nRCPT TO:<{BOB}>\r\n".encode() +
                       b"BDAT %d LAST\r\n" % (len(msg) + 100) + msg)
    assert codes(out) == [250, 250]
    time.sleep(0.3)
    assert copies(srv, subject) == 0


def test_an_unterminated_last_line_is_not_executed(srv):
    subject = f"fragment {uuid.uuid4()}"
    c = open_session(srv, "smtp")
    c.sock.sendall(f"MAIL FROM:<alice@else.test>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n".encode())
    assert [c.reply(), c.reply(), c.reply()] == [250, 250, 354]
    out = c.half_close(message(subject) + b".\r\nMAIL FROM:<x@else.test>")  # no CRLF: a fragment
    assert codes(out) == [250]  # the message, and nothing for the fragment
    assert copies(srv, subject) == 1


# ---------------------------------------------------------------------- POP3 and IMAP


def test_pop3_commands_pipelined_before_a_half_close_are_all_answered(srv):
    subject = f"pop3 half-close {uuid.uuid4()}"
    c = open_session(srv, "smtp")
    c.half_close(f"MAIL FROM:<alice@else.test>\r\nRCPT TO:<{DAVE}>\r\nDATA\r\n".encode() +
                 message(subject).replace(BOB.encode(), DAVE.encode()) + b".\r\nQUIT\r\n")
    assert copies(srv, subject, DAVE) == 1
    p = Conn(srv.ports["pop3"])
    out = p.half_close(f"USER {DAVE}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nDELE 1\r\nQUIT\r\nNOOP".encode())
    lines = out.split(b"\r\n")
    status = [ln for ln in lines if ln[:3] in (b"+OK", b"-ER")]
    assert len(status) == 7 and all(ln.startswith(b"+OK") for ln in status), status  # greeting + 6 commands
    assert status[3].startswith(b"+OK 1 ") and f"Subject: {subject}".encode() in out
    assert copies(srv, subject, DAVE) == 0  # QUIT's UPDATE state ran: DELE applied (RFC 1939 §6)


def test_imap_commands_pipelined_before_a_half_close_are_all_answered(srv):
    subject = f"imap half-close {uuid.uuid4()}"
    c = open_session(srv, "smtp")
    c.half_close(f"MAIL FROM:<alice@else.test>\r\nRCPT TO:<{BOB}>\r\nDATA\r\n".encode() + message(subject) +
                 b".\r\nQUIT\r\n")
    i = Conn(srv.ports["imap"])
    out = i.half_close(f"a LOGIN {BOB} {PASSWORD}\r\nb SELECT INBOX\r\nc UID SEARCH SUBJECT \"{subject}\"\r\n"
                       f"d NOOP\r\ne LOGOUT\r\nf NOOP".encode())
    tagged = [ln.split(b" ", 2)[:2] for ln in out.split(b"\r\n") if ln[:1] in b"abcdef" and ln[:1]]
    assert tagged == [[b"a", b"OK"], [b"b", b"OK"], [b"c", b"OK"], [b"d", b"OK"], [b"e", b"OK"]]
    assert b"* SEARCH " in out and b"* BYE" in out
