"""Postfix's ``smtp-sink`` as a test server: a real SMTP implementation that someone else wrote.

Flags select its behaviour (``-p`` no PIPELINING, ``-e`` no ESMTP, ``-f RCPT`` refuse every RCPT with 5xx,
``-d TEMPLATE`` dump each message to a file). It runs as ``nobody`` when the tests run as root, as it requires.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


@contextmanager
def smtp_sink(*flags: str, dump: bool = False) -> Iterator[tuple[int, Path | None]]:
    """Yields (port, dump folder or None) while an smtp-sink listens on 127.0.0.1."""
    port = free_port()
    dump_dir = Path(tempfile.mkdtemp(prefix="courrier-sink-")) if dump else None
    args = [SMTP_SINK, *flags]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    if dump_dir is not None:
        dump_dir.chmod(0o777)
        args += ["-d", f"{dump_dir}/%Y%m%d%H%M%S."]
    args += [f"127.0.0.1:{port}", "100"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"smtp-sink exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("smtp-sink never listened") from None
                time.sleep(0.05)
        yield port, dump_dir
    finally:
        proc.terminate()
        proc.wait(10)
        if dump_dir is not None:
            shutil.rmtree(dump_dir, ignore_errors=True)


def dumped(dump_dir: Path, count: int = 1, timeout: float = 10) -> list[bytes]:
    """The dump files smtp-sink wrote, once ``count`` of them exist."""
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(p for p in dump_dir.iterdir() if p.is_file())
        if len(files) >= count or time.monotonic() > deadline:
            return [p.read_bytes() for p in files]
        time.sleep(0.05)
