"""Scenario 52: clients other people wrote — curl imap://, a scripted mutt session — and the TLS rules:
LOGINDISABLED without TLS when loopback is not trusted (RFC 3501 §6.2.3), STARTTLS and imaps."""

from __future__ import annotations

import imaplib
import subprocess

import pytest

from tests.access.clients import PASSWORD, USER, deliver, imap, insecure_context, run_mutt


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("clients52"), listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    deliver(s, b"Subject: first\r\n\r\nfirst body\r\n")
    deliver(s, b"Subject: mutt-target\r\n\r\nsecond body\n.with a dot\r\n")
    yield s
    s.stop()


def curl(*args: str) -> bytes:
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--user", f"{USER}:{PASSWORD}", *args],
                          capture_output=True, timeout=30, check=True).stdout


def test_curl_imap_lists_and_fetches_byte_exact(srv):
    base = f"imap://127.0.0.1:{srv.ports['imap']}"
    listing = curl(base + "/")
    assert b'"." INBOX' in listing and b"Trash" in listing
    files = {m.data.replace(b"\n", b"\r\n") for m in srv.stored(USER)}
    got = {curl(f"{base}/INBOX;UID={uid}") for uid in (1, 2)}
    assert got == files
    assert curl(base + "/INBOX?SUBJECT%20mutt-target").strip() == b"* SEARCH 2"


def test_mutt_moves_a_message_to_trash(srv, tmp_path):
    run_mutt(tmp_path / "mutt", srv.ports["imap"],
             "<limit>~s mutt-target<enter><save-message>=Trash<enter><sync-mailbox><quit>")
    c = imap(srv)
    c.select("Trash", readonly=True)
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: mutt-target\r\n\r\n"
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert [d[1] for d in data if isinstance(d, tuple)] == [b"Subject: first\r\n\r\n"]
    c.logout()


def test_login_requires_tls_when_loopback_is_not_trusted(server_factory):
    s = server_factory(listeners=("imap", "imaps"), top={"trust_loopback": False})
    s.add_user(USER, PASSWORD)
    s.start()
    c = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=10)
    assert "LOGINDISABLED" in c.capabilities and "STARTTLS" in c.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        c.login(USER, PASSWORD)
    c.starttls(insecure_context())
    assert "LOGINDISABLED" not in c.capabilities and "AUTH=PLAIN" in c.capabilities
    assert c.login(USER, PASSWORD)[0] == "OK"
    c.logout()
    c = imaplib.IMAP4_SSL("127.0.0.1", s.ports["imaps"], ssl_context=insecure_context(), timeout=10)
    assert c.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())[0] == "OK"
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4_SSL("127.0.0.1", s.ports["imaps"], ssl_context=insecure_context()).login(USER, "wrong")
    c.logout()
