"""Issue 11 item 8: RSS of `courrier serve` before/after 8 unauthenticated connections each announcing a 25 MiB
non-synchronising literal (`APPEND INBOX {26214400+}`) and sending it.

    PYTHONPATH=$PWD python bench/imap_preauth_rss.py [connections] [MiB]

Prints VmRSS and VmHWM (peak) of the server process before and after, in MiB.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.support import Server


def vm(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def attack(port: int, size: int, out: list[str]) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.recv(4096)  # greeting
    s.sendall(b"a APPEND INBOX {%d+}\r\n" % size)
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        while sent < size:
            s.sendall(chunk[:min(len(chunk), size - sent)])
            sent += min(len(chunk), size - sent)
        s.sendall(b"\r\n")
        s.settimeout(30)
        out.append(s.recv(200).decode("latin-1").strip())
    except OSError as e:
        out.append(f"{type(e).__name__} after {sent >> 20} MiB")
    finally:
        s.close()


def main() -> None:
    conns = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    size = (int(sys.argv[2]) if len(sys.argv) > 2 else 25) << 20
    with tempfile.TemporaryDirectory() as d:
        srv = Server(Path(d), listeners=("imap",))
        srv.add_user("bob@example.test", "secret")
        srv.start()
        try:
            pid = srv.proc.pid
            time.sleep(0.5)
            before = vm(pid, "VmRSS"), vm(pid, "VmHWM")
            out: list[str] = []
            ts = [threading.Thread(target=attack, args=(srv.ports["imap"], size, out)) for _ in range(conns)]
            t0 = time.monotonic()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            time.sleep(0.5)
            after = vm(pid, "VmRSS"), vm(pid, "VmHWM")
            print(f"{conns} connections x {size >> 20} MiB in {time.monotonic() - t0:.1f}s; replies: {sorted(set(out))}")
            print(f"RSS before {before[0]:.0f} MiB (peak {before[1]:.0f}); after {after[0]:.0f} MiB "
                  f"(peak {after[1]:.0f}); peak growth {after[1] - before[1]:+.0f} MiB")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
