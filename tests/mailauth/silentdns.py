"""A nameserver that never answers: a UDP socket on loopback that reads every question and drops it.

What a firewalled or dead resolver looks like to dnspython (each question waits for its whole timeout). Used to prove
the ``[auth] check_timeout`` budget: ``with SilentDNS() as ns: … nameservers = [ns.address]``.
"""

from __future__ import annotations

import socket
import threading
from typing import Any


class SilentDNS:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.questions = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="silent-dns", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recvfrom(4096)
                self.questions += 1
            except (TimeoutError, OSError):
                continue

    def __enter__(self) -> SilentDNS:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
