"""Scenario 43: ``courrier sendmail`` as applications call /usr/sbin/sendmail — PHP's mail() (``-t -i``), cron
(``-FCronDaemon -i -B8BITMIME -oem user``) and ``git send-email`` — written straight into the spool, so it works
while the server is down; local recipients land in their Maildir, others are relayed; sysexits exit codes."""

import os
import shlex
import subprocess
import sys

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import inbox, make_receiver, make_sender, point_mx, subjects, wait_for
from tests.support import ENV, run_cli

SENDMAIL = f"{shlex.quote(sys.executable)} -m courrier sendmail"


@pytest.fixture
def dns():
    with FakeDNS() as d:
        yield d


@pytest.fixture
def pair(server_factory, dns):
    b = make_receiver(server_factory, users=("bob", "dave")).start()
    point_mx(dns, "b.test")
    a = make_sender(server_factory, dns, b.ports["smtp"], users=("alice", "carol"))
    return a, b


def test_php_mail_and_git_send_email(pair, tmp_path):
    a, b = pair
    a.start()
    env = {**ENV, "COURRIER_CONFIG": str(a.config)}
    php = ('var_dump(mail("bob@b.test, carol@a.test", "from PHP", "Hello from mail()\\n", '
           '"From: alice@a.test\\r\\nBcc: dave@b.test"));')
    p = subprocess.run(["php", "-d", f"sendmail_path={SENDMAIL} -t -i", "-r", php], capture_output=True, text=True,
                       env=env, timeout=60)
    assert "bool(true)" in p.stdout, p.stdout + p.stderr
    for server, who in ((b, "bob@b.test"), (b, "dave@b.test"), (a, "carol@a.test")):
        m = wait_for(lambda s=server, w=who: inbox(s, w), what=f"PHP mail for {who}")[0]
        assert m["Subject"] == "from PHP" and "Bcc" not in m  # Bcc: removed (RFC 5322 §3.6.3)
        assert "Hello from mail()" in m.get_content()

    repo = tmp_path / "repo"
    genv = {**env, "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@a.test", "GIT_COMMITTER_NAME": "Alice",
            "GIT_COMMITTER_EMAIL": "alice@a.test", "HOME": str(tmp_path)}

    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, env=genv, capture_output=True, text=True, check=True,
                              timeout=60)

    repo.mkdir()
    git("init", "-q")
    (repo / "README").write_text("hello\n")
    git("add", "README")
    git("commit", "-qm", "Add a README")
    patch = git("format-patch", "-1", "-o", str(tmp_path / "out")).stdout.strip()
    git("send-email", f"--sendmail-cmd={SENDMAIL}", "--from=alice@a.test", "--to=bob@b.test",
        "--confirm=never", "--suppress-cc=all", "--no-chain-reply-to", patch)
    wait_for(lambda: "[PATCH] Add a README" in subjects(b, "bob@b.test"), what="the patch on b.test")


def test_cron_while_server_down(pair):
    a, _ = pair
    # Debian's cron: /usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem alice, with its own headers, UTF-8 output
    cron_mail = ("From: root (Cron Daemon)\nTo: alice\nSubject: Cron <alice@host> backup\n"
                 "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
                 "sauvegarde terminée\n")
    p = run_cli("sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice", "--config", str(a.config),
                input=cron_mail)
    assert p.returncode == 0
    assert "waiting for the server" in a.cli("queue", "list").stdout
    a.start()
    m = wait_for(lambda: inbox(a, "alice@a.test"), what="cron mail delivered after start")[0]
    assert m["Subject"] == "Cron <alice@host> backup"
    assert "sauvegarde terminée" in m.get_content()
    assert m["Message-ID"] and m["Date"]  # added, as Postfix's cleanup does
    # a second drop while the server runs is picked up within its poll interval
    run_cli("sendmail", "-t", "-f", "alice@a.test", "--config", str(a.config),
            input="To: carol@a.test\nSubject: while running\n\nbody\n.\nnot part of it\n")
    m = wait_for(lambda: inbox(a, "carol@a.test"), what="drop picked up by the running server")[0]
    assert m.get_content().strip() == "body"  # without -i a lone "." ends the message


def test_exit_codes(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('domains = ["a.test"]\ndata_dir = "d"\n')
    def sm(*args, input="Subject: x\n\nbody\n"):
        return subprocess.run([sys.executable, "-m", "courrier", "sendmail", *args, "--config", str(cfg)],
                              input=input, capture_output=True, text=True, env=ENV, timeout=60)
    assert sm().returncode == 64  # no recipients
    assert sm("-X").returncode == 64  # unknown flag
    assert sm("-t").returncode == 65  # -t and no To/Cc/Bcc
    assert sm("bad address@@x").returncode == 65
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "queue").write_text("not a directory")
    p = sm("bob@b.test")
    assert p.returncode == 73 and "courrier sendmail:" in p.stderr and "Traceback" not in p.stderr
    os.unlink(tmp_path / "d" / "queue")
    assert sm("bob@b.test").returncode == 0
