"""The disk-writer process itself (``mailbox/writer.py`` starts it and talks to it): jobs read from a socket, run in
rounds, answered one frame per round.

A module of its own, importing no asyncio and nothing of the server's: everything the child imports stays resident for
the server's life, and the memory budget (issue 17) counts the whole process tree. The jobs' modules
(``courrier.capture.writer_jobs``, ``courrier.mailbox.journal``…) are imported on first use.
"""

from __future__ import annotations

import errno
import importlib
import os
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from courrier.mailbox.maildir import BatchWriter, run_round

HEADER = struct.Struct("!I")  # each frame: its length, then a pickle
_HEADER = HEADER


def _portable(e: BaseException) -> BaseException:
    """An exception the parent can unpickle and the SMTP layer understands (OSError keeps its errno: 452 on ENOSPC)."""
    if isinstance(e, OSError):
        return OSError(e.errno, e.strerror or str(e))
    return OSError(errno.EIO, f"disk writer: {e!r}")


def child_main(fd: int, threads: int) -> None:
    """The child: reads jobs from the socket, runs them in rounds, answers each round in one frame.

    ``threads`` = 1 (the default of the stores): one thread reads every job that has arrived, runs them as one round,
    answers, and reads again — jobs sent during a round make the next one. More threads: a reader thread feeding a
    BatchWriter (rounds side by side, for disks that need concurrent fsyncs)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server decides, not us
    sock = socket.socket(fileno=fd)
    send_lock = threading.Lock()
    funcs: dict[str, Callable[..., Any]] = {}

    def settle(items: list[tuple[Any, bool, Any]]) -> None:
        out = [(jid, ok, res if ok else _portable(res)) for jid, ok, res in items]
        try:
            frame = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # an unpicklable result: fail those jobs rather than the process
            frame = pickle.dumps([(jid, False, _portable(e)) for jid, _, _ in items])
        with send_lock:
            sock.sendall(_HEADER.pack(len(frame)) + frame)

    def job(body: bytes) -> tuple[Callable[..., Any], tuple[Any, ...], Any]:
        jid, ref, args = pickle.loads(body)
        fn = funcs.get(ref)
        if fn is None:
            mod, _, name = ref.partition(":")
            fn = funcs[ref] = getattr(importlib.import_module(mod), name)
        return fn, args, jid

    writer = BatchWriter(threads, name="courrier-writer", settle=settle) if threads > 1 else None
    buf = bytearray()
    try:
        while True:
            # Block for the first bytes, then take whatever else has arrived without waiting.
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
            while True:
                try:
                    chunk = sock.recv(1 << 20, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                buf += chunk
            batch = []
            while len(buf) >= 4:
                (n,) = _HEADER.unpack_from(buf)
                if len(buf) < 4 + n:
                    break
                batch.append(job(bytes(buf[4:4 + n])))
                del buf[:4 + n]
            if writer is not None:
                for fn, args, jid in batch:
                    writer.submit_token(fn, args, jid)
            elif batch:
                run_round(batch, settle)
    finally:
        if writer is not None:
            writer.close()  # finishes and answers every job already received
        try:
            sock.close()
        finally:
            os._exit(0)
