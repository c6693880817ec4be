"""`courrier migrate --to postgresql DSN`: a local data dir, filled and changed by real clients, is copied into the
cluster database; a node started on it shows the same UIDVALIDITY, UIDs, flags and folders, takes the same
password, and the queue holds the message the local server had not sent yet."""

from __future__ import annotations

import imaplib
import re
import smtplib

from tests.e2e.mta_helpers import wait_for
from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)
from tests.support import free_port

USER, PASSWORD = "bob@example.test", "secret"


def _state(port: int) -> dict:
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    c.login(USER, PASSWORD)
    out = {}
    for box in ("INBOX", "Work"):
        typ, data = c.select(box)
        assert typ == "OK", data
        uv = c.response("UIDVALIDITY")[1][0]
        typ, st = c.status(box, "(MAILBOXID)")  # RFC 8474 §4: the same mailbox to clients that know it by its id
        uv += b" " + re.search(rb"MAILBOXID \(([^)]+)\)", st[0]).group(1)
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE)")
        rows = sorted(re.sub(rb"^\d+ ", b"", d).decode().replace(" \\Recent", "") for d in data if d)
        out[box] = (uv, rows)
    c.logout()
    return out


def test_migrate_keeps_uids_flags_passwords_and_the_queue(server_factory, pg_cluster):  # noqa: F811
    local = server_factory("local", listeners=("smtp", "submission", "imap"), domains=("example.test",),
                           sections={"delivery": {"retry_first": "1h", "smarthost": f"127.0.0.1:{free_port()}"}})
    local.add_user(USER, PASSWORD)
    local.start()
    with smtplib.SMTP("127.0.0.1", local.ports["smtp"], timeout=10) as s:
        for i in range(4):
            s.sendmail("x@remote.test", [USER], f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
    c = imaplib.IMAP4("127.0.0.1", local.ports["imap"], timeout=10)
    c.login(USER, PASSWORD)
    c.select("INBOX")
    c.uid("STORE", "1", "+FLAGS", "(\\Seen $Label1)")
    c.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    c.expunge()  # a UID gap: 2 is gone for good
    c.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
    c.create("Work")
    c.append("Work", "(\\Answered)", None, b"Subject: kept\r\n\r\nin Work\r\n")
    c.logout()
    before = _state(local.ports["imap"])
    # one message for a remote recipient that the server cannot send yet (smarthost refuses; next try in an hour)
    with smtplib.SMTP("127.0.0.1", local.ports["submission"], timeout=10) as s:
        s.login(USER, PASSWORD)
        s.sendmail(USER, ["someone@remote.test"], f"From: {USER}\r\nSubject: queued\r\n\r\nwaiting\r\n".encode())
    wait_for(lambda: "queue.deferred" in local.log(), what="the first attempt")
    local.stop()

    dsn = pg_cluster.new_database()
    p = local.cli("migrate", "--to", "postgresql", dsn)
    assert "copied 1 accounts" in p.stdout and "4 messages" in p.stdout and "1 queued" in p.stdout, p.stdout
    again = local.cli("migrate", "--to", "postgresql", dsn, check=False)
    assert again.returncode != 0 and "not empty" in again.stderr  # never mixes two copies

    node = server_factory("node", listeners=("imap",), domains=("example.test",),
                          sections={"store": {"backend": "postgresql", "dsn": dsn, "node": "n1"}}).start()
    assert _state(node.ports["imap"]) == before  # same UIDVALIDITY, UIDs, flags, sizes: no resync
    queued = pg_cluster.psql("SELECT q.attempts, r.address, r.status, length(q.message) > 0 FROM queue q "
                             "JOIN queue_rcpt r USING (qid)", dsn.rpartition("/")[2])
    assert queued.strip() == "1|someone@remote.test|pending|t"
