"""Scenario 83: `courrier mailpit` started as a compose file or a CI job starts Mailpit (cmd/root.go's flags and
MP_* variables), then spoken to over SMTP (smtplib, with AUTH) and the API; flags it cannot honour are refused in
one line with exit status 2."""

from __future__ import annotations

import smtplib
import subprocess
import time
from email.message import EmailMessage

import httpx
import pytest

from tests.support import COURRIER, ENV, free_port


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"port {port} never opened")


@pytest.fixture
def mailpit(tmp_path):
    procs: list[subprocess.Popen] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        p = subprocess.Popen([*COURRIER, "mailpit", *flags], env={**ENV, **(env or {})}, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def message(subject: str, msg_id: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "app@sender.test", "dev@example.test", subject, msg_id
    m.set_content("hello from the app")
    return m.as_bytes()


def test_compose_command_line(mailpit, tmp_path):
    """The usual compose service: `mailpit --smtp … --listen … --max … --smtp-auth-accept-any
    --smtp-auth-allow-insecure`, plus MP_* variables (MP_DATABASE, MP_MAX_MESSAGES, MP_TAG …)."""
    smtp, http = free_port(), free_port()
    proc = mailpit("--smtp", f"127.0.0.1:{smtp}", f"--listen=127.0.0.1:{http}", "--max", "3",
                   "--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--ignore-duplicate-ids",
                   "--tags-username", "--smtp-allowed-recipients", r"@example\.test$",
                   env={"MP_DATABASE": str(tmp_path / "data" / "mailpit.db"),
                        "MP_TAG": "invoices,billing=subject:invoice", "MP_MAX_MESSAGES": "500",
                        "MP_SMTP_AUTH_ACCEPT_ANY": "true"})
    wait_port(smtp, proc)
    wait_port(http, proc)
    with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as s:
        s.ehlo("ci.test")
        s.login("ci-job", "anything")  # accept-any
        assert s.sendmail("app@sender.test", ["dev@example.test"], message("Invoice 42", "<inv-42@app>")) == {}
        assert s.sendmail("app@sender.test", ["dev@example.test"], message("Invoice 42", "<inv-42@app>")) == {}
        assert s.sendmail("app@sender.test", ["dev@example.test"], message("Welcome", "<welcome@app>")) == {}
        code, _ = s.rcpt("x@elsewhere.test") if s.mail("app@sender.test")[0] == 250 else (0, b"")
        assert code == 550
    with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10) as c:
        deadline = time.monotonic() + 10
        while (page := c.get("/api/v1/messages").json())["total"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert page["total"] == 2  # the duplicate Message-ID was dropped, still with 250
        by_subject = {m["Subject"]: m for m in page["messages"]}
        assert by_subject["Invoice 42"]["Tags"] == ["billing", "ci-job", "invoices"]
        assert by_subject["Welcome"]["Tags"] == ["ci-job"] and by_subject["Welcome"]["Username"] == "ci-job"
        stats = c.get("/api/v1/info").json()["RuntimeStats"]
        assert stats["SMTPIgnored"] == 1 and stats["SMTPRejected"] == 1
        assert c.get("/api/v1/webui").json()["DuplicatesIgnored"] is True
    assert (tmp_path / "data" / "mailpit" / "courrier.db").exists()  # MP_DATABASE names where the data lives


def test_max_and_defaults(mailpit):
    """`--max` (cmd/root.go) bounds the mailbox; no --database: a temporary directory, removed at exit."""
    smtp, http = free_port(), free_port()
    proc = mailpit("-s", f"127.0.0.1:{smtp}", "-l", f"127.0.0.1:{http}", "-m", "2", "-q")
    wait_port(smtp, proc)
    wait_port(http, proc)
    with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as s:
        for i in range(4):
            s.sendmail("app@sender.test", ["dev@example.test"], message(f"m{i}", f"<m{i}@app>"))
    with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10) as c:
        time.sleep(0.3)
        page = c.get("/api/v1/messages").json()
        assert page["total"] == 2 and [m["Subject"] for m in page["messages"]] == ["m3", "m2"]
        data_dir = c.get("/api/v1/info").json()["Database"].rsplit("/", 1)[0]
    proc.terminate()
    proc.wait(20)
    import os

    assert not os.path.exists(data_dir)


def test_pop3_only_when_asked(mailpit):
    """POP3 listens only when `--pop3` (MP_POP3_BIND_ADDR, cmd/root.go) names an address; poplib reads the capture."""
    import poplib

    smtp, http, pop3 = free_port(), free_port(), free_port()
    proc = mailpit("--smtp", f"127.0.0.1:{smtp}", "--listen", f"127.0.0.1:{http}",
                   env={"MP_POP3_BIND_ADDR": f"127.0.0.1:{pop3}"})
    wait_port(smtp, proc)
    wait_port(pop3, proc)
    with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as s:
        s.sendmail("app@sender.test", ["dev@example.test"], message("by pop3", "<pop3@app>"))
    box = poplib.POP3("127.0.0.1", pop3, timeout=10)
    box.user("anyone")
    box.pass_("anything")
    deadline = time.monotonic() + 10
    while box.stat()[0] < 1 and time.monotonic() < deadline:
        box.quit()
        time.sleep(0.1)
        box = poplib.POP3("127.0.0.1", pop3, timeout=10)
        box.user("anyone")
        box.pass_("anything")
    assert b"Subject: by pop3" in b"\r\n".join(box.retr(1)[1])
    box.quit()


@pytest.mark.parametrize(("args", "env", "named"), [
    (("--smtp-auth-file", "/etc/passwords"), {}, "--smtp-auth-file"),
    (("--no-such-flag",), {}, "--no-such-flag"),
    (("--webroot=/mail",), {}, "--webroot"),
    ((), {"MP_SMTP_AUTH": "user:pass"}, "MP_SMTP_AUTH"),
    ((), {"MP_NOT_A_SETTING": "1"}, "MP_NOT_A_SETTING"),
    (("--smtp", "unix:/tmp/x.sock:0666"), {}, "--smtp"),
])
def test_refused_in_one_line(args, env, named):
    p = subprocess.run([*COURRIER, "mailpit", *args], env={**ENV, **env}, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], p.stderr


def test_help_lists_the_flags():
    p = subprocess.run([*COURRIER, "mailpit", "--help"], env=ENV, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    for flag in ("--smtp", "--listen", "--max", "--smtp-auth-accept-any", "--ui-auth-file", "--tag",
                 "--ignore-duplicate-ids", "--smtp-relay-host", "MP_SMTP_BIND_ADDR"):
        assert flag in p.stdout, flag
