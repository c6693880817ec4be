"""The disk-writer process: durable Maildir writes done by a child process instead of threads of the server.

Why a process. Under load the delivery path spent ~0.45 ms of CPU per message of which the file work itself (open,
write, fsync, close, rename, a shared directory fsync) is ~0.13 ms: the rest was threads of one interpreter taking
turns at the GIL — every system call of a writer thread is a GIL release and a contended re-acquire against the event
loop, i.e. futex sleeps and wake-ups, which on a small VM cost more than the disk. A child process has its own GIL:
the server's loop only pickles a job and writes it to a socket, and reads back one answer per round.

What the child does is exactly what the threads did (``maildir.BatchWriter`` rounds: each job writes, fsyncs and
renames its file; one directory fsync per directory per round; only then the answers), so the promise is unchanged:
a job is answered — and the SMTP 250 sent — only after its file and its directory entry are on stable storage.

Jobs are ``"module:function"`` references called as ``function(round, *args)`` in the child, with picklable
arguments and results. The child exits when the socket closes (server stopped or killed), after finishing the jobs
it already has. If the child dies, waiting jobs fail with ``OSError`` (the client gets a 4xx and retries) and the
next job starts a new child.
"""

from __future__ import annotations

import asyncio
import errno
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from courrier.mailbox.maildir import settle_futures
from courrier.mailbox.writer_child import HEADER as _HEADER

# Messages up to this size are written by the disk-writer process (this module) — the spool keeps them in memory
# (smtp/reader.py SPOOL_IN_MEMORY), so handing them over costs no disk read on the loop; larger ones stream from the
# spool file in the BatchWriter threads (``MaildirStore.deliver``).
PROCESS_MAX = 1 << 20
# Threads of that process. One: it never waits for its own GIL, and its rounds already share directory fsyncs.
# Measured against 2 and 4 (smtp-source, 20 sessions, A/B in one run): 1 thread 1665/1005 msg/s (MX/capture) and
# 0.72/1.25 ms CPU per message, 2 threads 1353/940 and 0.96/1.45; equal at 1 and 100 sessions and at 100 KB.
PROCESS_THREADS = 1

_ROOT = str(Path(__file__).resolve().parent.parent.parent)  # the directory holding the courrier package


class _Conn(asyncio.Protocol):
    """The server's end of the socket: answers arrive as frames of [(job id, ok, result)]."""

    def __init__(self, owner: ProcessWriter) -> None:
        self.owner = owner
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 4:
            (n,) = _HEADER.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                return
            items = pickle.loads(self.buf[4:4 + n])
            del self.buf[:4 + n]
            pending = self.owner._pending
            settle_futures([(fut, ok, res) for jid, ok, res in items if (fut := pending.pop(jid, None)) is not None])

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self)


class ProcessWriter:
    """Server side: ``await writer.submit("module:function", *args)`` runs ``function(round, *args)`` in the child."""

    def __init__(self, threads: int = 4, name: str = "courrier-writer") -> None:
        self.threads = threads
        self.name = name
        self._proc: subprocess.Popen[bytes] | None = None
        self._transport: asyncio.Transport | None = None
        self._conn: _Conn | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._closed = False
        self._out: list[bytes] = []  # frames of this loop iteration, written together (one wake-up of the child)

    async def _ensure(self) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        if self._transport is not None and self._loop is loop and not self._transport.is_closing():
            return self._transport
        if self._starting is not None and self._loop is loop:
            await asyncio.shield(self._starting)
            if self._transport is not None:
                return self._transport
        if self._closed:
            raise OSError(errno.ESHUTDOWN, "disk writer closed")
        self._stop_child()  # another loop's child (tests run several loops), or a dead one
        self._loop = loop
        self._starting = loop.create_future()
        try:
            parent, child = socket.socketpair()
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", f"import sys; sys.path.insert(0, {_ROOT!r}); "
                     f"from courrier.mailbox.writer_child import child_main; child_main({child.fileno()}, {self.threads})"],
                    pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            finally:
                child.close()
            self._transport, self._conn = await loop.connect_accepted_socket(  # type: ignore[assignment]
                lambda: _Conn(self), sock=parent)
        finally:
            self._starting.set_result(None)
            self._starting = None
        assert self._transport is not None
        return self._transport

    async def submit(self, ref: str, *args: Any) -> Any:
        """Runs the job in the child; returns its result once its round's directory fsyncs are done."""
        transport = await self._ensure()
        loop = asyncio.get_running_loop()
        self._next += 1
        jid = self._next
        fut = loop.create_future()
        self._pending[jid] = fut
        frame = pickle.dumps((jid, ref, args), protocol=pickle.HIGHEST_PROTOCOL)
        if not self._out:
            loop.call_soon(self._write_out, transport)
        self._out += (_HEADER.pack(len(frame)), frame)
        return await fut

    def _write_out(self, transport: asyncio.Transport) -> None:
        out, self._out = self._out, []
        if not transport.is_closing():
            transport.write(b"".join(out))

    def _lost(self, conn: _Conn) -> None:
        if conn is not self._conn:
            return
        self._transport, self._conn = None, None
        pending, self._pending = self._pending, {}
        err = OSError(errno.EIO, "disk writer process exited")
        settle_futures([(f, False, err) for f in pending.values()])

    def _stop_child(self, timeout: float = 30) -> None:
        if self._transport is not None:
            try:
                fd = self._transport.get_extra_info("socket").fileno()
                dup = socket.socket(fileno=os.dup(fd))
                try:
                    dup.shutdown(socket.SHUT_WR)  # EOF now, even if this loop never runs again
                finally:
                    dup.close()
            except (OSError, AttributeError, ValueError):
                pass
            try:
                self._transport.close()
            except RuntimeError:  # its loop is closed already
                pass
        self._transport, self._conn = None, None
        if self._proc is not None:
            try:
                self._proc.wait(timeout)  # it finishes the jobs it has, then exits
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        self._closed = True
        self._stop_child()
