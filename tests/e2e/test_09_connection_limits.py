"""Scenario 09: connection limits per protocol, per client, and the budget of commands that move no mail.

- ``max_connections`` / ``max_connections_per_ip`` apply to each protocol separately: SMTP listeners (smtp,
  submission) together, IMAP, POP3. Filling SMTP's cap leaves IMAP and POP3 greeting; a protocol over its cap
  refuses in its own words (421 4.7.0, ``* BYE [UNAVAILABLE]``, ``-ERR [SYS/TEMP]``).
- A client is an IPv4 address or an IPv6 prefix (``[limits] ipv6_prefix``; unit tests in tests/net cover the
  prefix arithmetic, here ``::1`` and ``127.0.0.1`` are two clients of one dual-stack listener).
- EHLO, HELO, NOOP, RSET, VRFY, HELP, unknown verbs and empty BDAT chunks count toward ``max_junk_commands``
  (default 100) until a message is accepted; past it: 421 4.7.0 and close — they reset the idle timer, so without
  the budget one client could hold a slot forever.
"""

from __future__ import annotations

import contextlib
import socket

import pytest

from tests.support import Server, free_port

BOB = "bob@example.test"


def connect(port: int, host: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """A connection and its first line (the greeting or the refusal)."""
    s = socket.create_connection((host, port), timeout=10)
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return s, buf.split(b"\r\n", 1)[0]


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, TimeoutError):
        return False
    return True


@pytest.fixture
def capped(tmp_path):
    s = Server(tmp_path, listeners=("smtp", "submission", "imap", "pop3"),
               sections={"limits": {"max_connections": 5}})
    s.start()
    yield s
    s.stop()


def test_a_full_smtp_cap_leaves_imap_and_pop3_greeting(capped):
    with contextlib.ExitStack() as held:
        for i in range(5):  # the SMTP listeners share one budget: 3 on smtp, 2 on submission
            s, greeting = connect(capped.ports["smtp" if i < 3 else "submission"])
            held.callback(s.close)
            assert greeting.startswith(b"220 ")
        for name in ("smtp", "submission"):
            s, refusal = connect(capped.ports[name])
            held.callback(s.close)
            assert refusal.startswith(b"421 4.7.0 Too many connections") and closed_by_server(s)
        imap_conns = []
        for _ in range(5):  # IMAP has a budget of its own, untouched by SMTP
            s, greeting = connect(capped.ports["imap"])
            held.callback(s.close)
            imap_conns.append(s)
            assert greeting.startswith(b"* OK ")
        s, refusal = connect(capped.ports["imap"])
        held.callback(s.close)
        assert refusal.startswith(b"* BYE [UNAVAILABLE] too many connections") and closed_by_server(s)
        s, greeting = connect(capped.ports["pop3"])  # SMTP and IMAP both full: POP3 still answers
        held.callback(s.close)
        assert greeting.startswith(b"+OK ")
        imap_conns[0].close()
    # slots come back when connections close
    for name, greeting in (("smtp", b"220 "), ("imap", b"* OK ")):
        for _ in range(50):
            s, line = connect(capped.ports[name])
            s.close()
            if line.startswith(greeting):
                break
        assert line.startswith(greeting)


def test_per_client_counting_over_ipv4_and_ipv6_loopback(tmp_path):
    port = free_port()
    s = Server(tmp_path, listeners=("smtp",),
               sections={"listen": {"smtp": [f"127.0.0.1:{port}", f"[::1]:{port}"]},
                         "limits": {"max_connections_per_ip": 2, "ipv6_prefix": 64}})
    s.ports["smtp"] = port
    with s, contextlib.ExitStack() as held:
        for host in ("127.0.0.1", "::1"):  # two clients: each gets its own two slots
            for _ in range(2):
                c, greeting = connect(port, host)
                held.callback(c.close)
                assert greeting.startswith(b"220 ")
        for host in ("::1", "127.0.0.1"):
            c, refusal = connect(port, host)
            held.callback(c.close)
            assert refusal.startswith(b"421 4.7.0 Too many connections from your address")


@pytest.fixture(scope="module")
def mx(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("junk"), listeners=("smtp",))
    s.add_user(BOB)
    s.start()
    yield s
    s.stop()


def session(mx: Server, wire: bytes) -> list[bytes]:
    """Greeting, then ``wire`` in one write; every reply line until the server closes (or 5 s of silence)."""
    c, greeting = connect(mx.ports["smtp"])
    c.sendall(wire)
    out = b""
    c.settimeout(5)
    try:
        while chunk := c.recv(65536):
            out += chunk
    except TimeoutError:
        out += b"(still open)\r\n"
    c.close()
    return [ln for ln in out.split(b"\r\n") if ln and ln[3:4] != b"-"]


@pytest.mark.parametrize("idle", [
    b"NOOP\r\n",
    b"EHLO client.example\r\n",
    b"HELO client.example\r\n",
    b"RSET\r\n",
    b"VRFY bob\r\n",
    b"HELP\r\n",
    b"MAIL FROM:<a@else.test>\r\nRSET\r\n",  # transactions opened and abandoned
    b"MAIL FROM:<a@else.test>\r\nEHLO client.example\r\n",
])
def test_idle_commands_have_a_budget_per_session(mx, idle):
    replies = session(mx, b"EHLO client.example\r\n" + idle * 120 + b"QUIT\r\n")
    assert replies[-1].startswith(b"421 4.7.0 Too many commands that move no mail")
    assert b"221 2.0.0 Bye" not in replies  # closed at the budget: QUIT never read


def test_empty_bdat_chunks_count_too(mx):
    replies = session(mx, b"EHLO c\r\nMAIL FROM:<a@else.test>\r\nRCPT TO:<bob@example.test>\r\n" +
                      b"BDAT 0\r\n" * 120 + b"QUIT\r\n")
    assert replies[-1].startswith(b"421 4.7.0")


def test_accepted_mail_gives_the_budget_back(mx):
    msg = b"Subject: budget\r\n\r\nhi\r\n"
    transaction = (b"MAIL FROM:<a@else.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT %d LAST\r\n" % len(msg)) + msg
    replies = session(mx, b"EHLO c\r\n" + b"NOOP\r\n" * 90 + transaction + b"NOOP\r\n" * 90 + b"QUIT\r\n")
    assert replies[-1] == b"221 2.0.0 Bye"
    assert not any(r.startswith(b"421") for r in replies)


def test_the_budget_is_configurable(tmp_path):
    s = Server(tmp_path, listeners=("smtp",), sections={"limits": {"max_junk_commands": 3}})
    with s:
        replies = session(s, b"NOOP\r\n" * 5)
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"421"]
