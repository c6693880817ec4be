"""The DATA reader: dot-unstuffing, end-of-data detection and line limits over a byte stream (RFC 5321 §4.1.1.4).

Fed whatever ``data_received`` gets, it writes the message to a spool file as it goes — never the whole message in
memory. Rules:

- Only ``<CRLF>.<CRLF>`` ends the data (§4.1.1.4). ``<LF>.<LF>``, ``<CR><LF>.<LF>`` and ``<LF>.<CR><LF>`` do not:
  that is what closes the SMTP-smuggling hole (CVE-2023-51766 and friends).
- A bare LF is stored as CRLF (normalised), so the stored message has one line-ending convention.
- A leading dot is removed from every line that has one (§4.5.2, transparency).
- Text lines are limited to 1000 octets including CRLF (§4.5.3.1.6); longer lines and oversize messages keep being
  read to the end, then refused, so the client and server stay in step.
"""

from __future__ import annotations

import tempfile
from typing import IO

MAX_LINE = 1000  # RFC 5321 §4.5.3.1.6, including the CRLF
SPOOL_IN_MEMORY = 1 << 20  # below this a message stays in memory; above it spills to a temp file


def new_spool(tmp_dir: str | None = None) -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=tmp_dir)  # type: ignore[return-value]


class DataReader:
    """Consumes DATA bytes until the end marker; ``feed`` returns the bytes that follow it (pipelined commands)."""

    def __init__(self, sink: IO[bytes], max_size: int) -> None:
        self.sink = sink
        self.max_size = max_size
        self.size = 0  # octets of the unstuffed message, counted even past the limit
        self.too_big = False
        self.line_too_long = False
        self.error: OSError | None = None  # a write failure (full disk): reported at the end
        self.done = False
        self._partial = b""  # an incomplete last line carried to the next feed
        self._at_crlf = True  # the previous line ended with CRLF (the 354 reply counts as a line start)
        self._continuing = False  # the next bytes continue an over-long line already written out

    def feed(self, data: bytes) -> bytes | None:
        """Processes ``data``; returns None while more is needed, or the leftover bytes after the end marker."""
        buf = self._partial + data if self._partial else data
        last_nl = buf.rfind(b"\n")
        if last_nl >= 0 and not self._continuing and buf.count(b"\n", 0, last_nl + 1) == buf.count(
                b"\r\n", 0, last_nl + 1):
            return self._feed_fast(buf, last_nl)
        return self._feed_lines(buf)

    def _feed_fast(self, buf: bytes, last_nl: int) -> bytes | None:
        """The common case — complete lines, all CRLF: whole-buffer operations instead of a loop per line."""
        complete = buf[: last_nl + 1]
        if self._at_crlf and complete.startswith(b".\r\n"):
            end = 0
        else:
            i = complete.find(b"\r\n.\r\n")
            end = i + 2 if i >= 0 else -1
        body = complete if end < 0 else complete[:end]
        if body:
            if len(body) > MAX_LINE and max(map(len, body.split(b"\r\n"))) + 2 > MAX_LINE:
                self.line_too_long = True
            if self._at_crlf and body[:1] == b".":
                body = body[1:]
            body = body.replace(b"\r\n.", b"\r\n")  # RFC 5321 §4.5.2: one leading dot off every line
            self._write([body])
        self._at_crlf = True
        if end >= 0:
            self.done = True
            self._partial = b""
            return buf[end + 3:]
        self._partial = buf[last_nl + 1:]
        if len(self._partial) > MAX_LINE:
            return self._feed_lines(self._take_partial())
        return None

    def _take_partial(self) -> bytes:
        p, self._partial = self._partial, b""
        return p

    def _feed_lines(self, buf: bytes) -> bytes | None:
        """The general case, line by line: bare LFs, over-long lines, continued lines."""
        end = len(buf)
        pos = 0
        out: list[bytes] = []
        while pos < end:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line = buf[pos: nl + 1]
            pos = nl + 1
            crlf = len(line) >= 2 and line[-2] == 13
            if crlf and self._at_crlf and line == b".\r\n":
                self._write(out)
                self.done = True
                self._partial = b""
                return buf[pos:]
            if len(line) > MAX_LINE + (0 if crlf else 1):
                self.line_too_long = True
            if line[:1] == b"." and not self._continuing:
                line = line[1:]
            self._continuing = False
            if not crlf:
                line = line[:-1] + b"\r\n"  # bare LF → CRLF
            out.append(line)
            self._at_crlf = crlf
        rest = buf[pos:]
        if len(rest) > MAX_LINE:
            # A line with no end in sight: keep it flowing to the spool, remember the violation.
            self.line_too_long = True
            if rest[:1] == b"." and self._at_crlf:
                rest = rest[1:]
            out.append(rest)
            self._at_crlf = False
            self._continuing = True
            rest = b""
        self._partial = rest
        self._write(out)
        return None

    def _write(self, out: list[bytes]) -> None:
        if not out:
            return
        chunk = b"".join(out)
        self.size += len(chunk)
        if self.size > self.max_size:
            self.too_big = True
            return
        if self.error is None:
            try:
                self.sink.write(chunk)
            except OSError as e:
                self.error = e
