"""Scenario 58b: POP3 keeps nothing large for a client that has not logged in (issue 11, the class of item 8).

POP3 lines are at most 8 KiB (an AUTH initial response, RFC 5034 §4), so the connection's read buffer is bounded to
that: 40 clients each sending a megabyte without a line end used to hold up to 2 MiB each in the server."""

from __future__ import annotations

import poplib
import socket
import threading
from pathlib import Path

from tests.access.clients import PASSWORD, USER


def vm_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def test_endless_preauth_lines_do_not_grow_the_server(server_factory):
    srv = server_factory(listeners=("pop3",))
    srv.add_user(USER, PASSWORD)
    srv.start()
    before = vm_kib(srv.proc.pid, "VmRSS")
    socks, peak = [], [0]

    def attack() -> None:
        s = socket.create_connection(("127.0.0.1", srv.ports["pop3"]), timeout=10)
        socks.append(s)
        s.recv(512)
        try:
            for _ in range(4):
                s.sendall(b"x" * (256 << 10))  # 1 MiB in all, never a line end
        except OSError:
            pass

    threads = [threading.Thread(target=attack) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    peak[0] = vm_kib(srv.proc.pid, "VmRSS") - before
    for s in socks:
        s.close()
    print(f"POP3 pre-auth: RSS grew by {peak[0]} KiB while 40 clients held endless lines")
    assert peak[0] < 16 * 1024, f"RSS grew by {peak[0]} KiB while 40 clients held endless lines"
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)  # still serving
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
