"""Scenario 73: ports and privileges, for real (the suite runs as root).

Started as root with ``user`` set, courrier binds ports below 1024, takes ``data_dir`` over and then runs as that user
— real, effective, saved and file-system ids, its child process too — and what it writes belongs to that user; a
hard link or symbolic link planted in ``data_dir`` is not used to take a root file. A missing user, ``user =
"root"``, a start as some third user and a data_dir the user cannot reach are each refused in one line.
``serve --check-config`` lists every problem, one per line, exit 0/1; ``contrib/courrier.service`` passes
``systemd-analyze verify`` and carries the hardening the operations guide promises.
"""

from __future__ import annotations

import configparser
import http.client
import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import sys
from pathlib import Path

from tests.access.clients import wait_for
from tests.e2e.ops_support import (  # noqa: F401
    REPO,
    RootServer,
    children,
    open_dir_fixture,
    privileged_port,
    proc_ids,
    system_user_fixture,
)
from tests.support import free_port

MSG = b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: after the drop\r\n\r\nhello\r\n"


def test_binds_low_ports_as_root_then_runs_as_user(open_dir, system_user):
    uid, gid = system_user.pw_uid, system_user.pw_gid
    ports = {"smtp": privileged_port()}
    ports["imap"] = _another_low_port(ports["smtp"])
    ports["http"] = free_port()
    s = RootServer(open_dir, system_user, ports)
    # what an older version or a root shell left behind: a root-owned file, a hard link to a root file outside,
    # and a symbolic link to one
    s.data.mkdir()
    (s.data / "left-by-root").write_text("x")
    outside = open_dir / "outside-root-file"
    outside.write_text("secret")
    os.link(outside, s.data / "hardlink")
    (s.data / "symlink").symlink_to("/etc/hostname")
    # a root CLI writes as the user
    s.cli("user", "add", "bob@example.test", "--password-stdin", input="secret\n")
    assert (s.data / "courrier.db").stat().st_uid == uid

    s.start()
    try:
        ids = proc_ids(s.proc.pid)
        assert ids["Uid"] == [uid] * 4 and ids["Gid"] == [gid] * 4, ids
        assert 0 not in ids["Groups"]
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
            c.sendmail("a@remote.test", ["bob@example.test"], MSG)
        new = s.data / "mail" / "example.test" / "bob" / "new"
        [path] = wait_for(lambda: list(new.iterdir()), what="delivery")
        assert path.stat().st_uid == uid and path.stat().st_gid == gid
        for child in children(s.proc.pid):  # the disk-writer process inherits the drop
            assert proc_ids(child)["Uid"] == [uid] * 4
        im = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)  # lazy imports still work as the user
        im.login("bob@example.test", "secret")
        im.select("INBOX")
        assert im.search(None, "SUBJECT", '"after the drop"')[1][0]
        im.logout()
        conn = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=10)
        conn.request("GET", "/livez")
        assert conn.getresponse().status == 200
        # everything under data_dir is the user's, except what it must never get
        for p in s.data.rglob("*"):
            if p.name in ("hardlink", "symlink"):
                continue
            assert p.lstat().st_uid == uid, p
        assert outside.stat().st_uid == 0 and os.stat("/etc/hostname").st_uid == 0
        assert "server.privileges user=courrier-e2e" in s.log()
    finally:
        assert s.stop() == 0, s.log()


def _another_low_port(taken: int) -> int:
    for port in range(taken + 1, 1024):
        with socket.socket() as so:
            try:
                so.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no second free port below 1024")


def _one_line_failure(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


def test_refusals_are_one_line(open_dir, system_user):
    s = RootServer(open_dir, system_user, {"smtp": free_port()})
    text = s.config.read_text()
    s.config.write_text(text.replace('user = "courrier-e2e"', 'user = "no-such-user-73"'))
    line = _one_line_failure(s.cli("serve", check=False))
    assert "no-such-user-73" in line and "does not exist" in line
    line = _one_line_failure(s.cli("user", "list", check=False))
    assert "no-such-user-73" in line

    s.config.write_text(text.replace('user = "courrier-e2e"', 'user = "root"'))
    assert "refuses to keep running as root" in _one_line_failure(s.cli("serve", check=False))

    s.config.write_text(text)  # started as a third user (nobody): refused, naming both
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *s.cmd, "serve",
                        "--config", str(s.config)], capture_output=True, text=True, env=s.env, cwd="/")
    line = _one_line_failure(p)
    assert "'nobody'" in line and "courrier-e2e" in line

    hidden = open_dir / "private"  # data_dir under a 0700 root directory: the user cannot reach it
    (hidden / "inner").mkdir(parents=True)
    hidden.chmod(0o700)
    s.config.write_text(text.replace('data_dir = "data"', f'data_dir = "{hidden}/inner/data"'))
    line = _one_line_failure(s.cli("serve", check=False))
    assert "courrier-e2e" in line and str(hidden / "inner" / "data") in line


def test_check_config_lists_every_problem(open_dir, system_user):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    cert, key = open_dir / "cert.pem", open_dir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=mx.example.test"],
                   check=True, capture_output=True)
    cert.chmod(0o644)
    key.chmod(0o600)  # root's: the user cannot read it
    good = RootServer(open_dir, system_user, {"smtp": free_port()})
    p = good.cli("serve", "--check-config")
    assert p.stdout.startswith("configuration OK")

    bad = RootServer(open_dir, system_user, {"smtp": taken, "imap": free_port()},
                     sections={"tls": {"cert": str(cert), "key": str(key)}})
    p = bad.cli("serve", "--check-config", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    lines = p.stdout.strip().splitlines()
    assert any(f"127.0.0.1:{taken}: address already in use" in x for x in lines), lines
    assert any("cannot read the TLS key" in x and str(key) in x for x in lines), lines
    assert len(lines) == 2, lines
    busy.close()

    text = bad.config.read_text().replace('user = "courrier-e2e"', 'user = "no-such-user-73"')
    bad.config.write_text(text)
    p = bad.cli("serve", "--check-config", check=False)
    assert p.returncode == 1 and any("no-such-user-73" in x for x in p.stdout.splitlines())


def test_systemd_unit_is_valid_and_hardened(tmp_path):
    unit = REPO / "contrib" / "courrier.service"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    svc = parser["Service"]
    assert svc["ProtectSystem"] == "strict" and svc["NoNewPrivileges"] == "yes"
    caps = svc["CapabilityBoundingSet"].split()
    assert "CAP_NET_BIND_SERVICE" in caps and "CAP_SYS_ADMIN" not in caps
    assert svc["ReadWritePaths"] == "/var/lib/courrier" and "--check-config" in svc["ExecStartPre"]
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the real verifier, on a copy whose ExecStart points at this checkout's courrier
        exe = str(Path(sys.executable).with_name("courrier"))
        copy = tmp_path / "courrier.service"
        copy.write_text(unit.read_text().replace("/opt/courrier/bin/courrier", exe))
        p = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
        assert p.returncode == 0 and "Unknown" not in p.stderr, p.stderr
