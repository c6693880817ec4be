"""An accepted message's content, spooled to memory or disk: what the SMTP engine hands to a role, delivery stores
and the queue reads. Kept here, beside the envelope, so that delivery needs nothing of the engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO


@dataclass
class ReceivedMessage:
    """An accepted message body as the client sent it (CRLF line endings, dot-unstuffed), spooled to memory or disk.

    ``file`` is positioned anywhere; readers seek(0) first. ``size`` is its length in octets.
    """

    file: IO[bytes]
    size: int

    def read_all(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        self.file.seek(0)
        while True:
            b = self.file.read(size)
            if not b:
                return
            yield b
