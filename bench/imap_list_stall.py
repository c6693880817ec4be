"""Issue 11 item 9: SMTP banner latency while one LIST "" *a*a*a*a*b runs over a 200-character name.

    PYTHONPATH=$PWD python bench/imap_list_stall.py
"""
import socket
import tempfile
import threading
import time
from pathlib import Path

from tests.access.clients import PASSWORD, USER, imap
from tests.access.wire import Wire
from tests.support import Server

with tempfile.TemporaryDirectory() as d:
    s = Server(Path(d), listeners=("smtp", "imap"))
    s.add_user(USER, PASSWORD)
    s.start()
    try:
        c = imap(s); c.create("a" * 200); c.logout()
        lat = []; stop = threading.Event()
        def probe():
            while not stop.is_set():
                t = time.monotonic()
                with socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=60) as x:
                    x.recv(512)
                lat.append(time.monotonic() - t); time.sleep(0.02)
        th = threading.Thread(target=probe); th.start(); time.sleep(0.1)
        w = Wire(s.ports["imap"]); w.sock.settimeout(120)
        t = time.monotonic(); r = w.cmd('LIST "" *a*a*a*a*b'); dt = time.monotonic() - t
        stop.set(); th.join()
        print(f"LIST took {dt:.2f}s ({r[-1].strip().decode()}); slowest SMTP banner {max(lat)*1000:.0f} ms over {len(lat)} probes")
    finally:
        s.stop()
