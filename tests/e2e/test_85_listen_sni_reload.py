"""Scenario 85 (issue 15, item 2): listening on IPv4 and IPv6 at once, certificates chosen by SNI, SIGHUP.

One server listens for SMTP (MX, STARTTLS), IMAPS and POP3 (STLS) on 127.0.0.1 *and* ::1, the same ports. Clients connect on both
families: smtplib delivers over each, Python's ssl and ``openssl s_client`` ask for names by SNI and get the
certificate of ``[tls.domains."mail.a.test"]``, of the wildcard ``"*.b.test"``, or ``[tls]``'s default. Then, without
a restart: a renewed certificate file + SIGHUP → new connections see it (an IMAP session opened before carries on);
a changed listen address + SIGHUP → one log line naming ``listen.smtp`` as needing a restart (the old addresses keep
serving); a broken certificate + SIGHUP → one error line and the running certificates are kept.
"""

from __future__ import annotations

import hashlib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from courrier import tlsutil
from tests.e2e.mta_helpers import wait_for
from tests.support import Server

V4, V6 = "127.0.0.1", "::1"


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind((V6, 0))
        return True
    except OSError:
        return False


def port_free_on_both() -> int:
    """A port free on 127.0.0.1 and on ::1 (tests.support.free_port only asks IPv4)."""
    for _ in range(50):
        with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6:
            v4.bind((V4, 0))
            port = v4.getsockname()[1]
            try:
                v6.bind((V6, port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free on both 127.0.0.1 and ::1")


def write_pair(folder: Path, stem: str, cn: str) -> tuple[Path, Path]:
    cert, key = tlsutil.build_self_signed(cn)  # a fresh key and serial each time: a renewal is a new certificate
    (folder / f"{stem}.crt").write_bytes(cert)
    (folder / f"{stem}.key").write_bytes(key)
    return folder / f"{stem}.crt", folder / f"{stem}.key"


def fingerprint(path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    return hashlib.sha256(der).hexdigest()


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # we compare fingerprints, not trust
    return ctx


def smtp_starttls_cert(host: str, port: int, sni: str | None) -> str:
    """SHA-256 of the certificate an SMTP STARTTLS (RFC 3207) handshake asking for ``sni`` gets."""
    with socket.create_connection((host, port), timeout=20) as raw:
        f = raw.makefile("rb")

        def reply() -> bytes:
            while (line := f.readline())[3:4] == b"-":
                pass
            return line

        assert reply().startswith(b"220")
        raw.sendall(b"EHLO client.test\r\n")
        assert reply().startswith(b"250")
        raw.sendall(b"STARTTLS\r\n")
        assert reply().startswith(b"220")
        with client_context().wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            tls.sendall(b"QUIT\r\n")
    return hashlib.sha256(der).hexdigest()


def pop3_stls_cert(host: str, port: int, sni: str | None) -> str:
    """The same for POP3's STLS (RFC 2595 §4)."""
    with socket.create_connection((host, port), timeout=20) as raw:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"+OK")
        raw.sendall(b"STLS\r\n")
        assert f.readline().startswith(b"+OK")
        with client_context().wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            tls.sendall(b"QUIT\r\n")
    return hashlib.sha256(der).hexdigest()


def imaps_cert(host: str, port: int, sni: str | None) -> str:
    with socket.create_connection((host, port), timeout=20) as raw, \
            client_context().wrap_socket(raw, server_hostname=sni) as tls:
        assert tls.recv(200).startswith(b"* OK")
        der = tls.getpeercert(binary_form=True)
        tls.sendall(b"a LOGOUT\r\n")
    return hashlib.sha256(der).hexdigest()


def openssl_subject(args: list[str], sni: str, text: str) -> str:
    p = subprocess.run(["openssl", "s_client", *args, "-servername", sni], input=text, capture_output=True,
                       text=True, timeout=30)
    m = re.search(r"^subject=.*?CN\s*=\s*([^,\n]+)", p.stdout, re.M)
    assert m, p.stdout[-2000:] + p.stderr
    return m.group(1).strip()


def reload_lines(srv: Server) -> list[str]:
    return [ln for ln in srv.log().splitlines() if " server.reload" in ln]


def sighup(srv: Server) -> str:
    """Sends SIGHUP and returns the one line the reload logged."""
    before = len(reload_lines(srv))
    srv.proc.send_signal(signal.SIGHUP)
    lines = wait_for(lambda: reload_lines(srv)[before:], what="the reload's log line")
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def srv(tmp_path):
    assert ipv6_loopback_works(), "this host cannot bind ::1"  # it should: the scenario needs both families
    certs = tmp_path / "certs"
    certs.mkdir()
    default = write_pair(certs, "default", "default.test")
    a = write_pair(certs, "a", "mail.a.test")
    b = write_pair(certs, "b", "any.b.test")
    s = Server(tmp_path, listeners=("smtp", "imaps", "pop3"), domains=("a.test",), hostname="mail.a.test")
    text = s.config.read_text()
    for name, port in list(s.ports.items()):
        s.ports[name] = both = port_free_on_both()
        text = text.replace(f'{name} = "{V4}:{port}"', f'{name} = ["{V4}:{both}", "[{V6}]:{both}"]')
    text += (f'\n[tls]\ncert = "{default[0]}"\nkey = "{default[1]}"\n'
             f'\n[tls.domains."mail.a.test"]\ncert = "{a[0]}"\nkey = "{a[1]}"\n'
             f'\n[tls.domains."*.b.test"]\ncert = "{b[0]}"\nkey = "{b[1]}"\n')
    s.config.write_text(text)
    s.certs = {"default": default, "a": a, "b": b}
    s.add_user("alice@a.test")
    with s:
        yield s


def test_both_families_sni_and_sighup(srv):
    smtp, imaps = srv.ports["smtp"], srv.ports["imaps"]
    fp = {k: fingerprint(p[0]) for k, p in srv.certs.items()}

    # clients on both families: mail delivered over 127.0.0.1 and over ::1, the banner lists both addresses
    for host in (V4, V6):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "x@remote.test", "alice@a.test", f"over {host}"
        msg.set_content("hello")
        with smtplib.SMTP(host, smtp, timeout=20) as c:
            c.send_message(msg)
    wait_for(lambda: len(srv.stored("alice@a.test")) == 2, what="two deliveries")
    assert f"127.0.0.1:{smtp}" in srv.log() and f"[::1]:{smtp}" in srv.log()

    # SNI over STARTTLS and implicit TLS, on both families: exact name, wildcard, no match, no SNI
    for host in (V4, V6):
        assert smtp_starttls_cert(host, smtp, "mail.a.test") == fp["a"]
        assert smtp_starttls_cert(host, smtp, "mx.b.test") == fp["b"]
        assert smtp_starttls_cert(host, smtp, None) == fp["default"]
        assert imaps_cert(host, imaps, "imap.b.test") == fp["b"]
        assert imaps_cert(host, imaps, "mail.a.test") == fp["a"]
        assert imaps_cert(host, imaps, "a.b.b.test") == fp["default"]  # a wildcard covers one label only
        assert pop3_stls_cert(host, srv.ports["pop3"], "pop.b.test") == fp["b"]
    assert openssl_subject(["-starttls", "smtp", "-connect", f"[::1]:{smtp}"], "mail.a.test", "QUIT\r\n") \
        == "mail.a.test"
    assert openssl_subject(["-connect", f"127.0.0.1:{imaps}"], "imap.b.test", "a LOGOUT\r\n") == "any.b.test"

    # a renewed certificate: same paths, new contents; an IMAP session opened before keeps working
    early = client_context().wrap_socket(socket.create_connection((V6, imaps), timeout=20),
                                         server_hostname="mail.a.test")
    greeting = b""
    while not greeting.endswith(b"\r\n"):  # the greeting carries the capability list: longer than one read
        greeting += early.recv(4096)
    assert greeting.startswith(b"* OK")
    write_pair(srv.dir / "certs", "a", "mail.a.test")
    renewed = fingerprint(srv.certs["a"][0])
    assert renewed != fp["a"]
    line = sighup(srv)
    assert re.search(r" info server\.reloaded applied=none restart_needed=none certificates=3$", line), line
    for host in (V4, V6):
        assert smtp_starttls_cert(host, smtp, "mail.a.test") == renewed
        assert imaps_cert(host, imaps, "mail.a.test") == renewed
        assert pop3_stls_cert(host, srv.ports["pop3"], "mail.a.test") == renewed
    assert imaps_cert(V4, imaps, None) == fp["default"]
    early.sendall(b"n NOOP\r\n")
    got = early.recv(4096)
    assert got.startswith(b"n OK"), got
    early.close()

    # a limit changed: applied to new sessions at once (RFC 5321 §4.5.3.1.8: 452 past the recipient limit)
    text = srv.config.read_text()
    srv.config.write_text(text + "\n[limits]\nmax_recipients = 1\n")
    line = sighup(srv)
    assert " applied=limits.max_recipients restart_needed=none " in line, line
    with smtplib.SMTP(V6, smtp, timeout=20) as c:
        c.ehlo("client.test")
        c.mail("x@remote.test")
        assert c.rcpt("alice@a.test")[0] == 250
        assert c.rcpt("alice@a.test")[0] == 452
    srv.config.write_text(text)
    assert " applied=limits.max_recipients " in sighup(srv)

    # a listen address changed: one line naming the key; the addresses bound at start keep serving
    srv.config.write_text(text.replace(f'"[::1]:{smtp}"]', f'"[::1]:{smtp + 1}"]', 1))
    line = sighup(srv)
    assert re.search(r" info server\.reloaded applied=none restart_needed=listen\.smtp certificates=3$", line), line
    assert smtp_starttls_cert(V6, smtp, "mail.a.test") == renewed
    srv.config.write_text(text)

    # a broken certificate: one error line, the running certificates stay
    srv.certs["b"][0].write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    line = sighup(srv)
    assert " error server.reload_failed " in line and "tls.domains.*.b.test" in line, line
    assert str(srv.certs["b"][0]) in line
    assert imaps_cert(V6, imaps, "imap.b.test") == fp["b"]
    assert smtp_starttls_cert(V4, smtp, "mail.a.test") == renewed

    # an unreadable one, too (config-level check): still one line, still serving
    srv.certs["b"][0].unlink()
    line = sighup(srv)
    assert " error server.reload_failed " in line and "cannot read" in line, line
    assert imaps_cert(V4, imaps, "x.b.test") == fp["b"]
    assert srv.proc.poll() is None
