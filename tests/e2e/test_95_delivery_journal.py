"""Scenario 95: the delivery journal keeps the 250 promise across a crash between the 250 and the settled Maildir.

The MX answers 250 once the message's journal record is fdatasync'ed; its Maildir file is made durable behind the
answer (courrier/mailbox/journal.py). Here the disk-writer process that settles the Maildirs is frozen (SIGSTOP), a
few messages are acknowledged, the server is killed with SIGKILL, and what a power loss at that moment could leave
is made by hand: files missing or cut short in new/, and a journal whose last append was torn. After the restart
every acknowledged message is in the Maildir exactly once and whole; the torn append, never acknowledged, is not.
"""

import mailbox
import os
import signal
import smtplib
import time
from pathlib import Path

import pytest

from courrier.mailbox import journal as J


def children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                out.append(int(p.name))
    return out


def send(port: int, tag: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.sendmail("a@else.test", ["bob@example.test"],
                   f"Subject: {tag}\r\nMessage-ID: <{tag}@else.test>\r\n\r\n".encode() + b"line\r\n" * 40)


@pytest.mark.local_store("the delivery journal is the local store's durability layout (Maildir files settled behind "
                         "the 250); on PostgreSQL the 250 follows the commit")
def test_kill9_between_the_250_and_the_settled_maildir(server_factory):
    mx = server_factory()
    mx.add_user("bob@example.test")
    mx.start()
    send(mx.ports["smtp"], "m0")
    deadline = time.monotonic() + 10  # the disk-writer process starts with the first settling round (~1 s)
    while not (writer := [c for c in children(mx.proc.pid)
                          if b"child_main" in Path(f"/proc/{c}/cmdline").read_bytes()]):
        assert time.monotonic() < deadline, "no disk-writer process"
        time.sleep(0.05)
    os.kill(writer[0], signal.SIGSTOP)  # no Maildir gets settled from now on
    for tag in ("m1", "m2", "m3"):
        send(mx.ports["smtp"], tag)
    mx.kill9()
    os.kill(writer[0], signal.SIGKILL)

    box = mx.maildir("bob@example.test")
    files = {m["Subject"]: Path(box, "new", key.split(":")[0]) for key, m in mailbox.Maildir(box).items()}
    assert sorted(files) == ["m0", "m1", "m2", "m3"]  # in new/ before the 250
    files["m1"].unlink()  # what the power loss took: a file that never reached the disk…
    files["m2"].write_bytes(files["m2"].read_bytes()[:30])  # … one that half did
    with open(mx.data / J.FILE, "r+b") as f:  # … and the append in flight, never acknowledged
        data = f.read()
        records = J.scan(data)
        end = sum(J.HEAD + len(p) for _, _, p in records)
        epoch = int.from_bytes(data[3:7], "little")
        rec = b"".join(J._record(epoch, records[-1][0] + 1, J.MESSAGE,
                                 [J._message_meta([(str(box), "1.torn,S=40", b"")]), b"Subject: torn\n\n" + b"x" * 25]))
        f.seek(end)
        f.write(rec[:-10])

    mx.start()
    got = sorted((m["Subject"], m.get_payload()) for m in mailbox.Maildir(box, create=False))
    assert got == [(t, "line\n" * 40) for t in ("m0", "m1", "m2", "m3")]  # each once, whole; no "torn"
    mx.wait_log("mailbox.journal_recovered")
