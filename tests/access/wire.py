"""A raw IMAP connection with automatic tags, for the RFC conformance tests that check exact wire behaviour
(what imaplib hides or refuses to send)."""

from __future__ import annotations

import socket
import time

from tests.access.clients import PASSWORD, USER


class Wire:
    def __init__(self, port: int, login: bool = True, user: str = USER) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")
        self.n = 0
        self.greeting = self.f.readline()
        if login:
            assert self.cmd(f"LOGIN {user} {PASSWORD}")[-1].split()[1] == b"OK"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        ln = self.f.readline()
        if not ln:
            raise AssertionError("connection closed")
        return ln

    def read_response(self, tag: bytes) -> list[bytes]:
        """Every line (literals inlined) up to and including the tagged one."""
        out = []
        while True:
            ln = self.line()
            while ln.endswith(b"}\r\n") and b"{" in ln:  # a literal follows: read it as part of the line
                n = int(ln[ln.rindex(b"{") + 1:-3])
                ln += self.f.read(n) + self.f.readline()
            out.append(ln)
            if ln.startswith(tag + b" "):
                return out

    def cmd(self, text: str | bytes) -> list[bytes]:
        """Sends one command line with the next tag; returns the response lines, the tagged one last."""
        self.n += 1
        tag = b"t%d" % self.n
        self.send(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.read_response(tag)

    def status(self, text: str | bytes) -> bytes:
        """The tagged status word (OK/NO/BAD) of one command."""
        return self.cmd(text)[-1].split()[1]

    def untagged(self, lines: list[bytes], word: bytes) -> list[bytes]:
        return [ln for ln in lines if ln.startswith(b"* ") and word in ln]

    def wait(self, pred, timeout: float = 10.0) -> list[bytes]:  # noqa: ANN001
        """NOOP until a response satisfies ``pred`` (changes from elsewhere arrive asynchronously)."""
        deadline = time.monotonic() + timeout
        seen: list[bytes] = []
        while time.monotonic() < deadline:
            lines = self.cmd("NOOP")
            seen += lines
            if pred(seen):
                return seen
            time.sleep(0.05)
        raise AssertionError(f"timed out; saw {seen!r}")

    def close(self) -> None:
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass
