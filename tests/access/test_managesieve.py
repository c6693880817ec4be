"""ManageSieve (RFC 5804) against a real ``courrier serve``: the real client ``sieve-connect`` (Debian) uploads,
lists, downloads, activates, checks and deletes scripts over STARTTLS; raw sessions check what it does not
exercise — the capability list per state, refusals with their response codes, AUTH only over TLS off trusted
loopback (``trust_loopback = false`` here stands for a remote client), the shared failure limiter, and the bounds
on lines and literals."""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import subprocess

import pytest

from tests.support import Server

USER, PASSWORD = "me@example.test", "secret"
GOOD = 'require ["fileinto"];\nif header :contains "subject" "[dev]" { fileinto "Dev"; }\n'
BAD = 'require ["fileinto"];\n\nif header :contains "subject" { fileinto "Dev"; }\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    d = tmp_path_factory.mktemp("managesieve")
    s = Server(d, listeners=("smtp", "managesieve"), top={"trust_loopback": False},
               sections={"limits": {"auth_failures_per_ip": 50}})
    s.add_user(USER, PASSWORD)
    s.add_user("other@example.test", PASSWORD)
    s.start()
    yield s
    s.stop()


def sieve_connect(server: Server, *args: str, user: str = USER, password: str = PASSWORD,
                  cwd=None) -> subprocess.CompletedProcess[str]:
    r, w = os.pipe()
    os.write(w, (password + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(["sieve-connect", "-s", "127.0.0.1", "-p", str(server.ports["managesieve"]),
                               "-u", user, "--passwordfd", str(r), "--notlsverify", *args],
                              pass_fds=(r,), capture_output=True, text=True, timeout=30, cwd=cwd)
    finally:
        os.close(r)


def test_sieve_connect_round_trip(server, tmp_path):
    (tmp_path / "good.sieve").write_text(GOOD)
    (tmp_path / "bad.sieve").write_text(BAD)
    up = sieve_connect(server, "--upload", "--localsieve", "good.sieve", "--remotesieve", "main", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert sieve_connect(server, "--activate", "--remotesieve", "main").returncode == 0
    listed = sieve_connect(server, "--list")
    assert listed.stdout.split("\n")[0].strip() == '"main" ACTIVE' or "main" in listed.stdout
    down = sieve_connect(server, "--download", "--remotesieve", "main", "--localsieve", "back.sieve", cwd=tmp_path)
    assert down.returncode == 0 and (tmp_path / "back.sieve").read_text() == GOOD
    # a syntax error is refused at upload, with the line and the reason (RFC 5804 §2.6)
    bad = sieve_connect(server, "--upload", "--localsieve", "bad.sieve", "--remotesieve", "bad", cwd=tmp_path)
    assert bad.returncode != 0 and re.search(r'NO "line 3: ', bad.stdout + bad.stderr)
    check = sieve_connect(server, "--checkscript", "--localsieve", "bad.sieve", cwd=tmp_path)
    assert check.returncode != 0 and "line 3" in check.stdout + check.stderr
    # the active script cannot be deleted (RFC 5804 §2.10); deactivated, it can
    refused = sieve_connect(server, "--delete", "--remotesieve", "main")
    assert refused.returncode != 0 and "NO (ACTIVE)" in refused.stdout + refused.stderr
    assert sieve_connect(server, "--deactivate").returncode == 0
    assert sieve_connect(server, "--delete", "--remotesieve", "main").returncode == 0
    assert "main" not in sieve_connect(server, "--list").stdout
    # the CLI sees the same store
    server.cli("sieve", "put", USER, "cli", str(tmp_path / "good.sieve"))
    assert '"cli"' in sieve_connect(server, "--list").stdout
    server.cli("sieve", "del", USER, "cli")


def test_wrong_password_is_refused(server):
    p = sieve_connect(server, "--list", password="wrong")
    assert p.returncode != 0


class Raw:
    """A raw ManageSieve session: responses read to their OK/NO/BYE line, literals included."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.ports["managesieve"]), timeout=10)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> list[bytes]:
        out = []
        while True:
            line = self.f.readline()
            if not line:
                out.append(b"<EOF>")
                return out
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.f.read(int(m.group(1))) + self.f.readline()
            out.append(line.rstrip(b"\r\n"))
            if re.match(rb"(OK|NO|BYE)\b", line):
                return out

    def cmd(self, data: bytes) -> list[bytes]:
        self.send(data + b"\r\n")
        return self.response()

    def starttls(self) -> list[bytes]:
        assert self.cmd(b"STARTTLS")[-1].startswith(b"OK")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.example.test")
        self.f = self.sock.makefile("rb")
        return self.response()  # RFC 5804 §2.2: the capabilities again

    def login(self, user: str = USER, password: str = PASSWORD) -> list[bytes]:
        token = base64.b64encode(f"\0{user}\0{password}".encode())
        return self.cmd(b'AUTHENTICATE "PLAIN" "' + token + b'"')

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server):
    r = Raw(server)
    yield r
    r.close()


def test_capabilities_and_tls_before_auth(raw):
    """RFC 5804 §1.7: no SASL mechanism before TLS for a client that is not trusted; STARTTLS offered; after
    STARTTLS, PLAIN and no STARTTLS. AUTHENTICATE before TLS: NO (ENCRYPT-NEEDED)."""
    greeting = raw.response()
    assert b'"SASL" ""' in greeting and b'"STARTTLS"' in greeting and b'"VERSION" "1.0"' in greeting
    assert any(b'"SIEVE" "fileinto' in g and b"vacation" in g for g in greeting)
    assert greeting[-1].startswith(b"OK")
    assert raw.login()[-1].startswith(b"NO (ENCRYPT-NEEDED)")
    assert raw.cmd(b'LISTSCRIPTS')[-1].startswith(b"NO")  # not authenticated
    caps = raw.starttls()
    assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps
    assert raw.login()[-1].startswith(b"OK")
    assert raw.cmd(b"CAPABILITY")[0:1] and any(b'"OWNER" "me@example.test"' in c for c in raw.cmd(b"CAPABILITY"))


def test_script_commands(raw):
    raw.response()
    raw.starttls()
    assert raw.login()[-1].startswith(b"OK")
    script = b'require "fileinto"; fileinto "A";\r\n'
    assert raw.cmd(b'HAVESPACE "s1" %d' % len(script))[-1].startswith(b"OK")
    assert raw.cmd(b'HAVESPACE "s1" 999999999')[-1].startswith(b"NO (QUOTA/MAXSIZE)")
    assert raw.cmd(b'PUTSCRIPT "s1" {%d+}\r\n' % len(script) + script)[-1].startswith(b"OK")
    assert raw.cmd(b'CHECKSCRIPT "keep;"')[-1].startswith(b"OK")
    assert raw.cmd(b'CHECKSCRIPT "frobnicate;"')[-1].startswith(b'NO "line 1: ')
    got = raw.cmd(b'GETSCRIPT "s1"')
    assert got == [b"{%d}\r\n" % len(script) + script.rstrip(b"\r\n"), b'OK "Getscript completed"']
    assert raw.cmd(b'GETSCRIPT "nope"')[-1].startswith(b"NO (NONEXISTENT)")
    assert raw.cmd(b'PUTSCRIPT "s2" "keep;"')[-1].startswith(b"OK")
    assert raw.cmd(b'RENAMESCRIPT "s1" "s2"')[-1].startswith(b"NO (ALREADYEXISTS)")
    assert raw.cmd(b'RENAMESCRIPT "s1" "s3"')[-1].startswith(b"OK")
    assert raw.cmd(b'SETACTIVE "s3"')[-1].startswith(b"OK")
    assert raw.cmd(b'SETACTIVE "nope"')[-1].startswith(b"NO (NONEXISTENT)")
    assert raw.cmd(b"LISTSCRIPTS") == [b'"s2"', b'"s3" ACTIVE', b'OK "Listscripts completed"']
    assert raw.cmd(b'DELETESCRIPT "s3"')[-1].startswith(b"NO (ACTIVE)")
    assert raw.cmd(b'SETACTIVE ""')[-1].startswith(b"OK")
    assert raw.cmd(b'DELETESCRIPT "s3"')[-1].startswith(b"OK")
    assert raw.cmd(b'DELETESCRIPT "s2"')[-1].startswith(b"OK")
    assert raw.cmd(b'NOOP "abc"') == [b'OK (TAG "abc") "Done"']
    assert raw.cmd(b"FROB")[-1].startswith(b"NO")
    assert raw.cmd(b"LOGOUT")[-1].startswith(b"OK")
    assert raw.response() == [b"<EOF>"]


def test_scripts_are_per_account(raw, server):
    raw.response()
    raw.starttls()
    raw.login("other@example.test")
    assert raw.cmd(b'PUTSCRIPT "mine" "keep;"')[-1].startswith(b"OK")
    assert server.cli("sieve", "list", USER).stdout.find("mine") < 0
    assert "mine" in server.cli("sieve", "list", "other@example.test").stdout


def test_bad_password_counts_and_is_no(raw):
    raw.response()
    raw.starttls()
    assert raw.login(password="wrong")[-1] == b'NO "Authentication failed"'
    assert raw.login()[-1].startswith(b"OK")


def test_bounds(server):
    """A literal larger than a SASL response before login, or an endless line: BYE, and the server stays up."""
    r = Raw(server)
    r.response()
    assert r.cmd(b'AUTHENTICATE "PLAIN" {100000+}')[-1].startswith(b"BYE")
    r.close()
    r = Raw(server)
    r.response()
    r.send(b"NOOP " + b"x" * 70000 + b"\r\n")
    assert r.response()[-1].startswith(b"BYE")
    r.close()
    r = Raw(server)
    assert r.response()[-1].startswith(b"OK")
    r.close()


def test_errors_end_the_session_refusals_do_not(raw):
    """Ten protocol errors end the session with BYE; a refused request (NONEXISTENT) is no error; a script that is
    not UTF-8 is refused, not stored with replacement characters."""
    raw.response()
    raw.starttls()
    raw.login()
    for _ in range(12):
        assert raw.cmd(b'GETSCRIPT "absent"')[-1].startswith(b"NO (NONEXISTENT)")
    assert raw.cmd(b'PUTSCRIPT "latin1" {6+}\r\nkeep;\xe9')[-1] == b'NO "String is not UTF-8 (RFC 5804 \xc2\xa74)"'
    for _ in range(8):
        assert raw.cmd(b"FROB")[-1].startswith(b"NO")
    assert raw.cmd(b"FROB")[-1].startswith(b"NO")
    assert raw.response()[-1].startswith(b"BYE")


def test_hostile_scripts_get_an_answer_and_the_server_stays_up(raw, server):
    """A 64 KiB script can nest 5,000 blocks or tests deep: compiling it recursed until a RecursionError. Now it is
    refused with the line (RFC 5804 §2.6: NO with the reason), as Pigeonhole refuses past 32; a script at the size
    bound plus one octet is QUOTA/MAXSIZE; ten sessions putting scripts at once all get their OK."""
    raw.response()
    raw.starttls()
    assert raw.login()[-1].startswith(b"OK")
    deep_blocks = b"if true{" * 5000 + b"keep;" + b"}" * 5000
    deep_tests = b"if " + b"not " * 5000 + b"true { keep; }\r\n"
    for script in (deep_blocks, deep_tests):
        assert len(script) < 64 * 1024
        for verb in (b'PUTSCRIPT "deep" ', b"CHECKSCRIPT "):
            got = raw.cmd(verb + b"{%d+}\r\n" % len(script) + script)[-1]
            assert got.startswith(b'NO "line ') and b"nested deeper than 32" in got, got
    big = b"#" + b"x" * (64 * 1024) + b"\r\nkeep;\r\n"
    assert raw.cmd(b'PUTSCRIPT "big" {%d+}\r\n' % len(big) + big)[-1].startswith(b"NO (QUOTA/MAXSIZE)")
    assert raw.cmd(b"LISTSCRIPTS")[-1].startswith(b"OK")

    import concurrent.futures

    def one(k: int) -> bytes:
        r = Raw(server)
        try:
            r.response()
            r.starttls()
            r.login("other@example.test")
            body = b'require "fileinto";\r\nif header :contains "subject" "%d" { fileinto "F%d"; }\r\n' % (k, k)
            return r.cmd(b'PUTSCRIPT "c%d" {%d+}\r\n' % (k, len(body)) + body)[-1]
        finally:
            r.close()

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(one, range(10)))
    assert all(a.startswith(b"OK") for a in answers), answers
