"""Scenario 39: one failed-login limiter for SMTP, IMAP, POP3, ManageSieve and HTTP, over real sockets and real
clients.

A flood of 60 concurrent wrong AUTH PLAIN attempts costs at most the budget in password checks (the slot is taken
before the check), the rest answer 454 4.7.0; the locked client then gets each protocol's "try later" answer
(IMAP ``NO [UNAVAILABLE]``, POP3 ``-ERR [SYS/TEMP]``, ManageSieve ``NO (TRYLATER)``, HTTP 429) — a correct password included — while another
client (127.0.0.2: Linux routes all of 127/8 to loopback) logs in. Failures on one protocol count on the others.
Behind a reverse proxy, X-Forwarded-For is believed from ``[http] trusted_proxies`` only.
"""

from __future__ import annotations

import base64
import http.client
import imaplib
import poplib
import smtplib
import socket
import time

import pytest

from tests.support import Server

BUDGET = 10  # [limits] auth_failures_per_ip, the contract's default
BOB, BOB_PW = "bob@example.test", "bob-secret"
ADMIN, ADMIN_PW = "admin@example.test", "admin-secret"
PROXY, STRANGER = "127.0.0.5", "127.0.0.6"  # the trusted reverse proxy, and a client that is not one


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("auth39"), listeners=("submission", "imap", "pop3", "managesieve", "http"),
               sections={"http": {"trusted_proxies": [PROXY]}})
    with s.accounts() as accounts:
        accounts.add(BOB, BOB_PW)
        accounts.add(ADMIN, ADMIN_PW, is_admin=True)
    s.start()
    yield s
    s.stop()


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def checks(srv: Server, at_least: int = 0) -> int:
    """Passwords the server checked: one ``auth.check`` log line each (courrier/auth/gate.py). The log is written
    in batches by a thread, so wait (a little) for ``at_least`` lines."""
    deadline = time.monotonic() + 5
    while True:
        n = sum(" auth.check " in line for line in srv.log().splitlines())
        if n >= at_least or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def smtp_login(srv: Server, source: str, user: str, password: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10, source_address=(source, 0)) as c:
        c.ehlo("client.test")
        c.user, c.password = user, password
        try:
            return c.auth("PLAIN", c.auth_plain)
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code, e.smtp_error


class IMAPFrom(imaplib.IMAP4):
    """imaplib bound to a chosen source address."""

    def __init__(self, port: int, source: str) -> None:
        self.source = source
        super().__init__("127.0.0.1", port, timeout=10)

    def _create_socket(self, timeout):  # noqa: ANN001, ANN202 - imaplib's hook
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


class POP3From(poplib.POP3):
    def __init__(self, port: int, source: str) -> None:
        self.source = source
        super().__init__("127.0.0.1", port, timeout=10)

    def _create_socket(self, timeout):  # noqa: ANN001, ANN202 - poplib's hook
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def imap_login(srv: Server, source: str, user: str, password: str) -> str:
    c = IMAPFrom(srv.ports["imap"], source)
    try:
        c.login(user, password)
        return "OK"
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        c.shutdown()


def pop3_login(srv: Server, source: str, user: str, password: str) -> str:
    c = POP3From(srv.ports["pop3"], source)
    try:
        c.user(user)
        return c.pass_(password).decode()
    except poplib.error_proto as e:
        return e.args[0].decode()
    finally:
        c.close()


def sieve_login(srv: Server, source: str, user: str, password: str) -> str:
    """RFC 5804 §2.1 AUTHENTICATE "PLAIN" over a raw socket (loopback is trusted for clear-text AUTH here); the
    final response line."""
    with socket.create_connection(("127.0.0.1", srv.ports["managesieve"]), timeout=10,
                                  source_address=(source, 0)) as sock:
        f = sock.makefile("rb")
        while not f.readline().startswith(b"OK"):  # the capability greeting
            pass
        sock.sendall(b'AUTHENTICATE "PLAIN" "' + plain(user, password).encode() + b'"\r\n')
        return f.readline().decode().rstrip()


def http_get(srv: Server, source: str, user: str, password: str, forwarded_for: str | None = None) -> int:
    c = http.client.HTTPConnection("127.0.0.1", srv.ports["http"], timeout=10, source_address=(source, 0))
    headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    try:
        c.request("GET", "/api/v1/messages", headers=headers)
        return c.getresponse().status
    finally:
        c.close()


def test_60_concurrent_wrong_attempts_cost_at_most_the_budget(srv):
    before = checks(srv)
    socks = []
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", srv.ports["submission"]), timeout=10)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        s.sendall(b"EHLO flood.test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        socks.append((s, f))
    for i, (s, _) in enumerate(socks):  # all 60 in flight together: none answered before the last is sent
        s.sendall(f"AUTH PLAIN {plain(BOB, f'guess-{i}')}\r\n".encode())
    replies = [f.readline().decode() for _, f in socks]
    for s, f in socks:
        f.close()
        s.close()
    wrong = [r for r in replies if r.startswith("535 ")]
    limited = [r for r in replies if r.startswith("454 4.7.0")]
    checked = checks(srv, before + len(wrong)) - before
    print(f"60 concurrent wrong attempts -> {len(wrong)} password checks ({len(limited)} answered 454 4.7.0)")
    assert len(wrong) <= BUDGET, f"60 concurrent wrong attempts -> {len(wrong)} password checks"
    assert len(wrong) + len(limited) == 60 and checked == len(wrong)


def test_the_locked_client_gets_try_later_everywhere_even_with_the_right_password(srv):
    # (follows the flood above: 127.0.0.1 has spent its budget for this window)
    code, text = smtp_login(srv, "127.0.0.1", BOB, BOB_PW)
    assert (code, text[:5]) == (454, b"4.7.0")
    answer = imap_login(srv, "127.0.0.1", BOB, BOB_PW)
    assert "[UNAVAILABLE]" in answer and "AUTHENTICATIONFAILED" not in answer
    answer = pop3_login(srv, "127.0.0.1", BOB, BOB_PW)
    assert answer.startswith("-ERR [SYS/TEMP]")
    assert sieve_login(srv, "127.0.0.1", BOB, BOB_PW).startswith("NO (TRYLATER)")
    assert http_get(srv, "127.0.0.1", ADMIN, ADMIN_PW) == 429


def test_another_client_is_not_affected(srv):
    assert smtp_login(srv, "127.0.0.2", BOB, BOB_PW)[0] == 235
    assert imap_login(srv, "127.0.0.2", BOB, BOB_PW) == "OK"
    assert pop3_login(srv, "127.0.0.2", BOB, BOB_PW).startswith("+OK")
    assert sieve_login(srv, "127.0.0.2", BOB, BOB_PW).startswith("OK")
    assert http_get(srv, "127.0.0.2", ADMIN, ADMIN_PW) == 200


def test_failures_on_one_protocol_count_on_the_others(srv):
    client = "127.0.0.3"
    for i in range(4):
        assert smtp_login(srv, client, BOB, f"smtp-guess-{i}")[0] == 535
    for i in range(3):
        assert "[AUTHENTICATIONFAILED]" in imap_login(srv, client, BOB, f"imap-guess-{i}")
    assert pop3_login(srv, client, BOB, "pop-guess").startswith("-ERR [AUTH]")
    assert sieve_login(srv, client, BOB, "sieve-guess") == 'NO "Authentication failed"'
    assert http_get(srv, client, ADMIN, "http-guess") == 401  # the 10th failure, over HTTP
    assert "[UNAVAILABLE]" in imap_login(srv, client, BOB, BOB_PW)
    assert smtp_login(srv, client, BOB, BOB_PW)[0] == 454
    assert sieve_login(srv, client, BOB, BOB_PW).startswith("NO (TRYLATER)")
    assert http_get(srv, client, ADMIN, ADMIN_PW) == 429


def test_http_brute_force_gets_429_and_forwarded_for_is_ignored_from_a_stranger(srv):
    for i in range(BUDGET):  # a new X-Forwarded-For each time: believed only from a trusted proxy, so no escape
        assert http_get(srv, STRANGER, ADMIN, f"guess-{i}", forwarded_for=f"198.51.100.{i}") == 401
    assert http_get(srv, STRANGER, ADMIN, ADMIN_PW, forwarded_for="198.51.100.99") == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(srv):
    for i in range(BUDGET):
        assert http_get(srv, PROXY, ADMIN, f"guess-{i}", forwarded_for="192.0.2.1, 203.0.113.7") == 401
    assert http_get(srv, PROXY, ADMIN, ADMIN_PW, forwarded_for="203.0.113.7") == 429
    # another user behind the same proxy, with the right password, is not locked out by those failures
    assert http_get(srv, PROXY, ADMIN, ADMIN_PW, forwarded_for="203.0.113.8") == 200
    log = srv.log()
    assert "http.auth_failed ip=203.0.113.7" in log and f"http.auth_failed ip={PROXY}" not in log


# --------------------------------------------------------------------------- capture mode's accept-any path


@pytest.fixture(scope="module")
def capture(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("auth39c"), listeners=("smtp", "imap", "pop3"), capture=True)
    s.start()
    yield s
    s.stop()


class Line:
    """A raw socket from a chosen source address, for what client libraries refuse to send (bad base64)."""

    def __init__(self, port: int, source: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        self.f = self.sock.makefile("rb")
        self.greeting = self.f.readline()

    def ask(self, line: str, until: bytes = b"") -> bytes:
        """Sends a line; returns the first reply line that starts with ``until``."""
        self.sock.sendall(line.encode() + b"\r\n")
        while True:
            reply = self.f.readline()
            if not reply or reply.startswith(until):
                return reply

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def capture_auth(srv: Server, source: str, response: str) -> bytes:
    c = Line(srv.ports["smtp"], source)
    try:
        c.ask("EHLO client.test", b"250 ")
        return c.ask(f"AUTH PLAIN {response}")
    finally:
        c.close()


def test_capture_accept_any_costs_nothing_but_malformed_sasl_counts_on_every_protocol(capture):
    client = "127.0.0.7"
    for i in range(2 * BUDGET):  # any credentials, as often as you like
        assert capture_auth(capture, client, plain(f"user{i}@anything.test", "whatever")).startswith(b"235")
    for _ in range(4):
        assert capture_auth(capture, client, "!!not-base64!!").startswith(b"501")
    imap = Line(capture.ports["imap"], client)
    for i in range(3):
        assert imap.ask(f"a{i} AUTHENTICATE PLAIN {base64.b64encode(b'no-nuls').decode()}",
                        f"a{i} ".encode()).startswith(f"a{i} BAD".encode())
    imap.close()
    pop = Line(capture.ports["pop3"], client)
    for _ in range(3):
        assert pop.ask("AUTH PLAIN %%%").startswith(b"-ERR")
    pop.close()
    # ten malformed attempts: the client is locked, even for the accept-any login, on every protocol
    assert capture_auth(capture, client, plain("u@x.test", "pw")).startswith(b"454 4.7.0")
    assert "[UNAVAILABLE]" in imap_login(capture, client, "u@x.test", "pw")
    assert pop3_login(capture, client, "u@x.test", "pw").startswith("-ERR [SYS/TEMP]")
    assert capture_auth(capture, "127.0.0.8", plain("u@x.test", "pw")).startswith(b"235")  # others are fine
