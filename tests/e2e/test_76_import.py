"""Scenario 76: moving in — ``courrier import`` from an mbox, a Maildir and a real Dovecot over IMAP, into a running
courrier, checked over IMAP (FLAGS, INTERNALDATE, folders, bytes).

Flags and dates survive; running it again imports nothing; "an mbox that is not one" is one line; a message over the
size limit is reported and the rest imported; an import killed half-way leaves only whole messages, and the next run
completes it without a duplicate.
"""

from __future__ import annotations

import calendar
import imaplib
import mailbox
import os
import re
import signal
import subprocess
import time

import pytest

from tests.access.clients import PASSWORD, USER, imap, wait_for
from tests.access.dovecot import Dovecot
from tests.support import COURRIER, ENV


@pytest.fixture
def srv(server_factory):
    s = server_factory(listeners=("smtp", "imap"), sections={"limits": {"max_message_size": 100_000}})
    s.add_user(USER, PASSWORD)
    return s.start()


def fetch_all(c: imaplib.IMAP4, folder: str = "INBOX") -> dict[str, tuple[set[str], float, bytes]]:
    """Subject → (flags, INTERNALDATE as Unix time, body bytes) of every message in ``folder``."""
    typ, _ = c.select(f'"{folder}"', readonly=True)
    assert typ == "OK", folder
    typ, data = c.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    out = {}
    for d in data:
        if not isinstance(d, tuple):
            continue
        meta, body = d
        subject = re.search(rb"^Subject: (.*?)\r?$", body, re.M | re.I).group(1).decode()
        flags = {f.decode() for f in imaplib.ParseFlags(meta)} - {"\\Recent"}
        out[subject] = (flags, time.mktime(imaplib.Internaldate2tuple(meta)), body)
    return out


MBOX = (b"From alice@x.test Sat Jan  3 01:05:34 1996\n"
        b"From: alice@x.test\nMessage-ID: <m1@x.test>\nSubject: read and answered\nStatus: RO\nX-Status: A\n\n"
        b"one\n>From the quoted line\n\n"
        b"From bob@x.test Mon Feb 12 10:00:00 2001\n"
        b"From: bob@x.test\nSubject: no message id, flagged\nX-Status: F\n\ntwo\n\n"
        b"From big@x.test Mon Feb 12 10:00:00 2001\nFrom: big@x.test\nSubject: too big\n\n"
        + b"x" * 150_000 + b"\n")


def test_mbox_and_maildir(srv, tmp_path):
    box = tmp_path / "old.mbox"
    box.write_bytes(MBOX)
    p = srv.cli("import", USER, str(box), check=False)
    assert p.returncode == 1 and p.stdout.startswith("2 imported, 0 already there, 1 failed"), p.stdout + p.stderr
    assert "message 3" in p.stderr and "max_message_size" in p.stderr
    got = fetch_all(imap(srv))
    assert set(got) == {"read and answered", "no message id, flagged"}
    flags, date, body = got["read and answered"]
    assert flags == {"\\Seen", "\\Answered"} and date == calendar.timegm((1996, 1, 3, 1, 5, 34))
    assert b"\r\nStatus:" not in body and b"X-Status" not in body and b">From the quoted line" in body
    assert got["no message id, flagged"][0] == {"\\Flagged"}
    again = srv.cli("import", USER, str(box), check=False)
    assert again.stdout.startswith("0 imported, 2 already there, 1 failed"), again.stdout
    assert len(fetch_all(imap(srv))) == 2

    md = mailbox.Maildir(tmp_path / "old-maildir", create=True)
    for subject, flags, when in (("maildir seen", "S", 1_000_000_000), ("maildir draft flagged", "DF", 1_100_000_000),
                                 ("maildir new", None, 1_200_000_000)):
        m = mailbox.MaildirMessage(f"From: c@x.test\nSubject: {subject}\n\nbody\n")
        if flags:
            m.set_subdir("cur")
            m.set_flags(flags)
        key = md.add(m)
        os.utime(os.path.join(md._path, md._lookup(key)), (when, when))
    out = srv.cli("import", USER, str(tmp_path / "old-maildir")).stdout
    assert out.startswith("3 imported, 0 already there, 0 failed")
    got = fetch_all(imap(srv))
    assert got["maildir seen"][:2] == ({"\\Seen"}, 1_000_000_000)
    assert got["maildir draft flagged"][:2] == ({"\\Draft", "\\Flagged"}, 1_100_000_000)
    assert got["maildir new"][:2] == (set(), 1_200_000_000)
    assert srv.cli("import", USER, str(tmp_path / "old-maildir")).stdout.startswith("0 imported, 3 already there")

    not_mbox = tmp_path / "photo.jpg"
    not_mbox.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    p = srv.cli("import", USER, str(not_mbox), check=False)
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        f'courrier: {not_mbox} is not an mbox (it does not start with a "From " line)']
    p = srv.cli("import", "nobody@example.test", str(box), check=False)
    assert p.returncode == 1 and "no account nobody@example.test" in p.stderr and "Traceback" not in p.stderr


def test_from_dovecot_over_imap(srv, tmp_path):
    source = tmp_path / "dovecot-mail"
    mailbox.Maildir(source, create=True)
    dv = Dovecot(tmp_path / "dovecot", source).start()
    try:
        c = imaplib.IMAP4("127.0.0.1", dv.port, timeout=10)
        c.login("old@example.test", "secret")
        assert c.create("Work")[0] == "OK" and c.create("Work.Projects")[0] == "OK"
        plan = [("INBOX", "inbox seen", r"(\Seen)", 1_300_000_000), ("INBOX", "inbox plain", None, 1_310_000_000),
                ("Work", "work flagged", r"(\Flagged $Label1)", 1_320_000_000),
                ("Work.Projects", "project answered", r"(\Answered \Seen)", 1_330_000_000)]
        for folder, subject, flags, when in plan:
            msg = f"From: a@x.test\r\nMessage-ID: <{subject.replace(' ', '.')}@x.test>\r\nSubject: {subject}\r\n\r\nb\r\n"
            assert c.append(folder, flags, imaplib.Time2Internaldate(when), msg.encode())[0] == "OK"
        c.logout()
        url = f"imap://old%40example.test@127.0.0.1:{dv.port}"
        out = srv.cli("import", USER, url, input="secret\n").stdout
        assert out.startswith("4 imported, 0 already there, 0 failed"), out
        again = srv.cli("import", USER, url, input="secret\n").stdout
        assert again.startswith("0 imported, 4 already there, 0 failed"), again
        bad = srv.cli("import", USER, url, input="wrong\n", check=False)
        assert bad.returncode == 1 and "cannot log in" in bad.stderr and len(bad.stderr.splitlines()) == 1
    finally:
        dv.stop()
    ours = imap(srv)
    for folder, subject, flags, when in plan:
        got = fetch_all(ours, folder)
        want = set(re.findall(r"[\\$]\w+", flags or ""))
        assert got[subject][:2] == (want, when), (folder, got)
    listed = b" ".join(ours.list()[1])
    assert b'"Work"' in listed or b" Work" in listed
    assert b"Work.Projects" in listed


def test_killed_import_leaves_whole_messages(srv, tmp_path):
    n = 1500
    box = tmp_path / "many.mbox"
    with open(box, "wb") as f:
        for i in range(n):
            f.write(b"From a@x.test Mon Feb 12 10:00:00 2001\nFrom: a@x.test\n"
                    b"Message-ID: <n%d@x.test>\nSubject: number %d\n\n" % (i, i) + b"line\n" * 200 + b"\n")
    proc = subprocess.Popen([*COURRIER, "import", USER, str(box), "--config", str(srv.config)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(srv.stored(USER)) >= 20, what="the import to be under way")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # PostgreSQL finishes a COMMIT it received even when the client is killed right after sending it: count once the
    # stored messages stop changing (the Maildir's files, or PostgreSQL's committed rows)
    files, deadline = [m.data for m in srv.stored(USER)], time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        again = [m.data for m in srv.stored(USER)]
        if len(again) == len(files):
            break
        files = again
    assert 20 <= len(files) < n
    for data in files:  # each visible message is a whole one
        i = int(re.search(rb"Subject: number (\d+)", data).group(1))
        assert data.endswith(b"line\n" * 200) and data.count(b"line\n") == 200, i
    out = srv.cli("import", USER, str(box)).stdout
    assert out.startswith(f"{n - len(files)} imported, {len(files)} already there, 0 failed"), out
    subjects = [v for v in fetch_all(imap(srv))]
    assert len(subjects) == n
