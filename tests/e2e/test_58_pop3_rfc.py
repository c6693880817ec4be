"""Scenario 58: POP3 conformance against `courrier serve` with poplib, curl and raw lines: TOP n (RFC 1939 §7,
n = 0 included), byte-stuffing (§3), message numbers that do not move after DELE (§5), the maildrop lock
(§8, RFC 2449 [IN-USE]), CAPA by state (RFC 2449 §5), long lines (RFC 2449 §4), commands in the wrong state,
SASL PLAIN's authorization identity (RFC 4616 §2, RFC 5034) and plain-text login only after STLS when loopback is
not trusted (RFC 2595 §2.1, §4)."""

from __future__ import annotations

import base64
import poplib
import re
import subprocess

import pytest

from tests.access.clients import PASSWORD, USER, Raw, deliver, imap, insecure_context

DOTS = b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle . dot\r\n\r\nlast line without end"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("pop58"), listeners=("smtp", "imap", "pop3", "pop3s"))
    s.add_user(USER, PASSWORD)
    s.start()
    deliver(s, b"Subject: one\r\nX-Long: a\r\n b\r\n\r\nl1\r\nl2\r\nl3\r\n")
    c = imap(s)  # APPEND keeps the bytes exactly, including a missing final line end and a header-less message
    c.append("INBOX", None, None, DOTS)
    c.append("INBOX", None, None, b"\r\nno header at all\r\nsecond\r\n")
    c.logout()
    yield s
    s.stop()


def raw_login(srv) -> Raw:
    r = Raw(srv.ports["pop3"])
    assert r.line().startswith(b"+OK")
    r.send(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
    assert r.line().startswith(b"+OK") and r.line().startswith(b"+OK")
    return r


def multiline(r: Raw) -> tuple[bytes, bytes]:
    first = r.line()
    body = b"".join(r.until(b".\r\n")) if first.startswith(b"+OK") else b""
    return first, body


def test_top_and_byte_stuffing_on_the_wire(srv):
    r = raw_login(srv)
    r.send(b"TOP 1 0\r\n")
    first, body = multiline(r)
    assert first.startswith(b"+OK")
    assert body.endswith(b"Subject: one\r\nX-Long: a\r\n b\r\n\r\n.\r\n")  # header, blank line, nothing else
    r.send(b"TOP 1 2\r\n")
    assert multiline(r)[1].endswith(b"\r\n\r\nl1\r\nl2\r\n.\r\n")
    r.send(b"TOP 1 99\r\n")
    assert multiline(r)[1].endswith(b"\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n")
    # §3: lines starting with "." get one more; the last line gets its CRLF before the terminating "."
    r.send(b"RETR 2\r\n")
    first, body = multiline(r)
    assert first.startswith(b"+OK %d octets" % len(DOTS))
    assert body == b"Subject: dots\r\n\r\n..\r\n...\r\n..leading\r\nmiddle . dot\r\n\r\nlast line without end\r\n.\r\n"
    r.send(b"TOP 2 1\r\n")
    assert multiline(r)[1] == b"Subject: dots\r\n\r\n..\r\n.\r\n"
    r.send(b"TOP 3 0\r\n")  # no header: the empty header and its blank line
    assert multiline(r)[1] == b"\r\n.\r\n"
    r.send(b"TOP 3 1\r\n")
    assert multiline(r)[1] == b"\r\nno header at all\r\n.\r\n"
    for bad in (b"TOP 1\r\n", b"TOP 1 -1\r\n", b"TOP x 1\r\n", b"TOP 9 0\r\n"):
        r.send(bad)
        assert r.line().startswith(b"-ERR"), bad
    r.send(b"QUIT\r\n")
    assert r.line().startswith(b"+OK")
    r.close()
    out = subprocess.run(["curl", "-sS", "--user", f"{USER}:{PASSWORD}", f"pop3://127.0.0.1:{srv.ports['pop3']}/",
                          "-X", "TOP 1 0"], capture_output=True, timeout=30, check=True).stdout
    assert out.endswith(b"X-Long: a\r\n b\r\n\r\n")


def test_poplib_unstuffs_to_the_stored_bytes(srv):
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    lines = p.retr(2)[1]
    assert b"\r\n".join(lines) == DOTS
    uidls = [ln.split() for ln in p.uidl()[1]]
    assert all(re.fullmatch(rb"[\x21-\x7e]{1,70}", u) for _, u in uidls)  # RFC 1939 §7 unique-id
    p.quit()


def test_numbers_do_not_move_after_dele_and_the_maildrop_is_locked(srv):
    r = raw_login(srv)
    r.send(b"DELE 1\r\nSTAT\r\nLIST 1\r\nLIST 2\r\nUIDL 3\r\nRETR 1\r\n")
    assert r.line().startswith(b"+OK")
    count = int(r.line().split()[1])
    assert r.line().startswith(b"-ERR")  # §5: a deleted message may not be referred to
    assert r.line().startswith(b"+OK 2 ")  # and the others keep their numbers
    assert r.line().startswith(b"+OK 3 ")
    assert r.line().startswith(b"-ERR")
    deliver(srv, b"Subject: arrives meanwhile\r\n\r\nx\r\n")
    r.send(b"STAT\r\n")
    assert int(r.line().split()[1]) == count  # the session's maildrop does not change under it
    # §8 / RFC 2449 §8.1.1: one session per maildrop, on either listener
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], timeout=10, context=insecure_context())
    p.user(USER)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        p.pass_(PASSWORD)
    p.close()
    r.send(b"RSET\r\nSTAT\r\nQUIT\r\n")
    assert r.line().startswith(b"+OK")
    assert int(r.line().split()[1]) == count + 1
    assert r.line().startswith(b"+OK")
    r.close()


def test_capa_states_case_long_lines_and_wrong_state(srv):
    r = Raw(srv.ports["pop3"])
    r.line()
    r.send(b"capa\r\n")  # commands are case-insensitive
    capa = r.until(b".\r\n")
    assert b"USER\r\n" in capa and b"SASL PLAIN\r\n" in capa and b"STLS\r\n" in capa and b"TOP\r\n" in capa
    for bad in (b"STAT\r\n", b"PASS x\r\n"):  # (ten errors in one session end it)
        r.send(bad)
        assert r.line().startswith(b"-ERR"), bad
    r.send(b"NOOP " + b"x" * 600 + b"\r\n")  # RFC 2449 §4: 255 octets per command; answered, not fatal
    assert r.line() == b"-ERR line too long\r\n"
    r.send(b"NOOP " + b"y" * 200_000 + b"\r\n")  # beyond every buffer: thrown away, the session goes on
    assert r.line() == b"-ERR line too long\r\n"
    # AUTH with an initial response may be longer than a command line (RFC 5034 §4): judged, not cut off
    r.send(b"AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{'p' * 600}".encode()) + b"\r\n")
    assert r.line().startswith(b"-ERR [AUTH] authentication failed")
    r.send(b"AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()) + b"\r\n")
    assert r.line().startswith(b"+OK")
    r.send(b"Capa\r\n")
    capa = r.until(b".\r\n")
    assert b"USER\r\n" not in capa and b"STLS\r\n" not in capa  # RFC 2449 §5: only what applies now
    for bad in (b"USER x\r\n", b"STLS\r\n", b"AUTH PLAIN\r\n"):
        r.send(bad)
        assert r.line().startswith(b"-ERR"), bad
    r.send(b"uidl\r\nquit\r\n")
    assert r.line().startswith(b"+OK")
    r.until(b".\r\n")
    assert r.line().startswith(b"+OK")
    r.close()


def test_sasl_authorization_identity_must_be_the_user(srv):
    r = Raw(srv.ports["pop3"])
    r.line()
    r.send(b"AUTH PLAIN " + base64.b64encode(f"alice@example.test\0{USER}\0{PASSWORD}".encode()) + b"\r\n")
    assert r.line().startswith(b"-ERR [AUTH]")
    r.send(b"AUTH PLAIN " + base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()) + b"\r\nQUIT\r\n")
    assert r.line().startswith(b"+OK")
    r.close()


def test_plaintext_login_waits_for_stls_when_loopback_is_not_trusted(tmp_path):
    from tests.support import Server

    with Server(tmp_path, listeners=("pop3",), top={"trust_loopback": False}) as srv:
        srv.add_user(USER, PASSWORD)
        r = Raw(srv.ports["pop3"])
        r.line()
        r.send(b"CAPA\r\n")
        capa = r.until(b".\r\n")
        assert b"STLS\r\n" in capa and b"USER\r\n" not in capa and b"SASL PLAIN\r\n" not in capa
        r.send(f"USER {USER}\r\n".encode())
        assert r.line().startswith(b"-ERR [AUTH]")  # RFC 2595 §2.1
        r.close()
        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
        p.stls(insecure_context())
        assert "USER" in p.capa() and "STLS" not in p.capa()  # RFC 2595 §4: capabilities after STLS
        p.user(USER)
        p.pass_(PASSWORD)
        assert p.stat()[0] == 0
        with pytest.raises(poplib.error_proto):
            p._shortcmd("STLS")  # RFC 2595 §4: not again, and not in TRANSACTION
        p.quit()


def test_capture_mode_does_not_promise_expire_never(tmp_path):
    """RFC 2449 §6.7: EXPIRE NEVER says messages are never deleted; capture retention does prune them."""
    from tests.support import Server

    with Server(tmp_path, listeners=("pop3",), capture=True) as srv:
        r = Raw(srv.ports["pop3"])
        r.line()
        r.send(b"CAPA\r\n")
        capa = r.until(b".\r\n")
        assert b"UIDL\r\n" in capa and not any(ln.startswith(b"EXPIRE") for ln in capa)
        r.close()
    (tmp_path / "normal").mkdir()
    with Server(tmp_path / "normal", listeners=("pop3",)) as srv:
        r = Raw(srv.ports["pop3"])
        r.line()
        r.send(b"CAPA\r\n")
        assert b"EXPIRE NEVER\r\n" in r.until(b".\r\n")
        r.close()
