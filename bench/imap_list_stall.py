"""Issue 11 item 9: SMTP banner latency while one LIST "" *a*a*a*a*b runs over a 200-character mailbox name.

    PYTHONPATH=$PWD python bench/imap_list_stall.py
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

from tests.access.clients import PASSWORD, USER, imap
from tests.access.wire import Wire
from tests.support import Server


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        srv = Server(Path(d), listeners=("smtp", "imap"))
        srv.add_user(USER, PASSWORD)
        srv.start()
        try:
            c = imap(srv)
            c.create("a" * 200)
            c.logout()
            latencies: list[float] = []
            stop = threading.Event()

            def probe() -> None:
                while not stop.is_set():
                    t = time.monotonic()
                    with socket.create_connection(("127.0.0.1", srv.ports["smtp"]), timeout=60) as s:
                        s.recv(512)
                    latencies.append(time.monotonic() - t)
                    time.sleep(0.02)

            prober = threading.Thread(target=probe)
            prober.start()
            time.sleep(0.1)
            w = Wire(srv.ports["imap"])
            w.sock.settimeout(120)
            t = time.monotonic()
            reply = w.cmd('LIST "" *a*a*a*a*b')[-1].strip().decode()
            took = time.monotonic() - t
            stop.set()
            prober.join()
            print(f"LIST took {took:.2f}s ({reply}); slowest SMTP banner {max(latencies) * 1000:.0f} ms "
                  f"over {len(latencies)} probes")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
