"""Scenario 51: POP3 with poplib and curl against a real `courrier serve`: byte-exact RETR with dot-stuffing undone,
TOP, UIDL, SASL PLAIN, STLS, pop3s, the [IN-USE] maildrop lock, and DELE applied only at QUIT (UPDATE state)."""

from __future__ import annotations

import base64
import poplib
import subprocess

import pytest

from tests.access.clients import (
    PASSWORD,
    USER,
    Raw,
    insecure_context,
    server_with_corpus,
    wait_for,
)
from tests.access.messages import ALL


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = server_with_corpus(tmp_path_factory.mktemp("pop51"), ("smtp", "pop3", "pop3s"))
    yield s
    s.stop()


def pop(srv) -> poplib.POP3:
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def _try_pop(srv) -> poplib.POP3 | None:
    try:
        return pop(srv)
    except poplib.error_proto:
        return None


def test_retr_is_byte_exact_and_top_uidl_stat_agree(srv):
    files = {m.data.replace(b"\n", b"\r\n") for m in srv.stored(USER)}
    p = pop(srv)
    count, total = p.stat()
    assert count == len(ALL) and total == sum(len(f) for f in files)
    got = set()
    for n in range(1, count + 1):
        resp, lines, octets = p.retr(n)
        body = b"\r\n".join(lines) + b"\r\n"
        assert octets - 2 * len(lines) <= len(body)
        got.add(body)
    assert got == files  # ".a line starting with a dot" came back un-stuffed
    resp, lines, _ = p.top(1, 1)
    header, _, rest = b"\r\n".join(lines).partition(b"\r\n\r\n")
    assert b"Subject:" in header and rest.count(b"\r\n") == 0
    uidls = p.uidl()[1]
    assert len(uidls) == count and len({u.split()[1] for u in uidls}) == count
    p.quit()


def test_sasl_plain_stls_and_pop3s(srv):
    r = Raw(srv.ports["pop3"])
    assert r.line().startswith(b"+OK")
    r.send(b"CAPA\r\n")
    capa = r.until(b".\r\n")
    assert b"STLS\r\n" in capa and b"SASL PLAIN\r\n" in capa and b"UIDL\r\n" in capa
    r.send(b"AUTH PLAIN " + base64.b64encode(f"\0{USER}\0wrong".encode()) + b"\r\n")
    assert r.line().startswith(b"-ERR [AUTH]")
    r.send(b"AUTH PLAIN\r\n")
    assert r.line().startswith(b"+ ")
    r.send(base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()) + b"\r\nSTAT\r\nQUIT\r\n")
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK %d " % len(ALL))
    r.close()

    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.stls(insecure_context())
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == len(ALL)
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], timeout=10, context=insecure_context())
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == len(ALL)
    p.quit()


def test_curl_pop3_lists_and_retrieves(srv):
    url = f"pop3://127.0.0.1:{srv.ports['pop3']}"
    listing = subprocess.run(["curl", "-sS", "--user", f"{USER}:{PASSWORD}", url + "/"], capture_output=True,
                             timeout=30, check=True).stdout
    assert len(listing.splitlines()) == len(ALL)
    msg = subprocess.run(["curl", "-sS", "--user", f"{USER}:{PASSWORD}", url + "/1"], capture_output=True,
                         timeout=30, check=True).stdout
    assert msg in {m.data.replace(b"\n", b"\r\n") for m in srv.stored(USER)}


def test_dele_only_at_quit_and_maildrop_lock(srv):
    p = pop(srv)
    p.dele(1)
    with pytest.raises(poplib.error_proto, match=r"IN-USE"):
        pop(srv)
    p.rset()
    p.dele(2)
    p.file.close()
    p.sock.close()  # no QUIT: nothing is deleted (RFC 1939 §6)
    p = wait_for(lambda: _try_pop(srv), what="the lock to be released")
    assert p.stat()[0] == len(ALL)
    p.dele(2)
    with pytest.raises(poplib.error_proto, match=r"deleted"):
        p.retr(2)
    p.quit()
    assert len(srv.stored(USER)) == len(ALL) - 1
    p = pop(srv)
    assert p.stat()[0] == len(ALL) - 1
    p.quit()
