#!/usr/bin/env python3
"""A bare SMTP responder: asyncio Protocol + uvloop that answers every command and stores nothing.

The honest ceiling of Python on this machine (issue 17): what one interpreter reaches when the per-message work is
nothing but the dialogue — a greeting, one reply per command line, DATA read until the ``CRLF.CRLF`` that ends it
(RFC 5321 §4.1.1.4), one send per reply. ``bench/scn_capture.py`` runs it beside courrier and smtp-sink so that the
ratio bare/sink of the same run says how far courrier/sink could go at most.

    python bench/bare_smtp.py PORT
"""

from __future__ import annotations

import asyncio
import sys

END = b"\r\n.\r\n"


class Bare(asyncio.Protocol):
    __slots__ = ("transport", "buf", "data")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""
        self.data = False
        self.transport.write(b"220 bare ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, chunk: bytes) -> None:
        buf = self.buf + chunk
        out = []
        while buf:
            if self.data:
                end = buf.find(END)
                if end < 0:
                    buf = buf[-4:]  # keep what could start the terminator
                    break
                buf = buf[end + 5:]
                self.data = False
                out.append(b"250 2.0.0 Ok\r\n")
                continue
            eol = buf.find(b"\r\n")
            if eol < 0:
                break
            verb = buf[:4].upper()
            buf = buf[eol + 2:]
            if verb == b"DATA":
                self.data = True
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                buf = b"\r\n" + buf  # the terminator's leading CRLF may be the blank line right after DATA
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                self.transport.write(b"".join(out))  # type: ignore[attr-defined]
                self.transport.close()
                return
            elif verb == b"EHLO":
                out.append(b"250-bare\r\n250 8BITMIME\r\n")
            else:
                out.append(b"250 2.0.0 Ok\r\n")
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Bare, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(main(int(sys.argv[1])))
