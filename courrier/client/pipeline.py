"""A lean SMTP client connection for the outbound MTA: one asyncio Protocol, one write per pipelined group.

What the relay's hot path needs and no more, so that a message costs as few system calls and wake-ups as possible:

- **PIPELINING** (RFC 2920 §3.1): MAIL, every RCPT and DATA leave in one write; their replies are read in order
  (a server answers such a group in one write too). After a 354 the message and its "." go in one more write.
  Without PIPELINING the same transaction runs in lock step.
- **Replies** are parsed as they arrive in ``data_received`` (RFC 5321 §4.2.1: "NNN-text" lines up to "NNN text"),
  queued, and handed to the one waiting reader; every wait has a timeout (a timer handle, no extra task).
- **STARTTLS** (RFC 3207) through ``loop.start_tls`` on the same transport; the extensions are forgotten after it
  (§4.2), so the caller sends EHLO again. **AUTH** PLAIN (RFC 4616) or LOGIN (RFC 4954).
- **Dot-stuffing** (RFC 5321 §4.5.2) of a message given with CRLF line ends.

Policy (which host, TLS requirements, what a reply means for each recipient) stays with the caller
(``courrier.delivery.remote``). Kept free of server imports, like the other client modules.

Errors: :class:`ConnectionLost` (closed or reset, ``before_reply`` tells whether any reply of the current exchange
arrived — a reused connection the peer had closed meanwhile), :class:`ReplyTimeout`, :class:`Garbled`; all derive
from :class:`PipelineError`. TLS failures surface as ``ssl.SSLError`` (``ssl.SSLCertVerificationError`` when the
certificate was checked and refused); a refused or reset connect as ``OSError``, a slow one as ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

MAX_LINE = 65536
MAX_REPLY_LINES = 1000
_LINE = re.compile(rb"(\d{3})([ -])")


class PipelineError(Exception):
    """The conversation cannot go on."""


class ConnectionLost(PipelineError):
    def __init__(self, text: str, before_reply: bool = False) -> None:
        super().__init__(text)
        self.before_reply = before_reply


class ReplyTimeout(PipelineError, TimeoutError):
    pass


class Garbled(PipelineError):
    pass


class NoMechanism(PipelineError):
    """AUTH is needed but the server offers no mechanism this client speaks (PLAIN, LOGIN)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str  # the lines' text without the codes, joined by "\n"

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(slots=True)
class Exchange:
    """The replies to one transaction (``Connection.send``), in the order the commands went."""

    mail: Reply | None = None
    rcpts: list[Reply] | None = None
    data: Reply | None = None  # the DATA reply when it was not 354, else the reply after the message
    sent: bool = False  # the message went out (its final reply is ``data``)


def dot_stuff(message: bytes) -> bytes:
    """``message`` (CRLF line ends) with a leading "." doubled on every line and a final CRLF (RFC 5321 §4.5.2)."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..")


class _Protocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.lines: list[str] = []
        self.code = b""
        self.replies: deque[Reply] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: PipelineError | None = None
        self.paused = False
        self.drain_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            m = _LINE.match(line)
            if m is None and len(line) == 3 and line.isdigit():  # "250" alone: a final line without text
                code, final, text = line, True, b""
            elif m is None or (self.lines and m.group(1) != self.code):
                self._fail(Garbled(f"garbled reply line {line[:80]!r}"))
                return
            else:
                code, final, text = m.group(1), m.group(2) == b" ", line[4:]
            self.code = code
            self.lines.append(text.rstrip(b"\r").decode("utf-8", "replace"))
            if final:
                self.replies.append(Reply(int(code), "\n".join(self.lines)))
                self.lines = []
            elif len(self.lines) >= MAX_REPLY_LINES:
                self._fail(Garbled(f"a reply of more than {MAX_REPLY_LINES} lines"))
                return
        self.buf = buf[start:] if start < len(buf) else b""
        if len(self.buf) > MAX_LINE:
            self._fail(Garbled(f"a reply line longer than {MAX_LINE} octets"))
            return
        if self.replies and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def eof_received(self) -> bool:
        self._fail(ConnectionLost("connection closed by the server"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by the server"
        self._fail(ConnectionLost(reason))
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def _fail(self, err: PipelineError) -> None:
        if self.error is None:
            self.error = err
        if self.transport is not None and not isinstance(err, ConnectionLost):
            self.transport.abort()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Connection:
    """One SMTP connection. ``await Connection.open(...)``, then ``ehlo``, ``starttls``, ``auth``, ``send``…"""

    def __init__(self, protocol: _Protocol, *, timeout: float, peer: str) -> None:
        self._p = protocol
        self.timeout = timeout
        self.peer = peer
        self.greeting: Reply | None = None
        self.extensions: dict[str, str] = {}  # EHLO keyword (upper case) → its parameters
        self._exchange_started = False  # a reply of the current exchange arrived (stale-connection detection)

    # ------------------------------------------------------------------ connection

    @classmethod
    async def open(cls, host: str, port: int, *, connect_timeout: float = 30.0, timeout: float = 300.0) -> Connection:
        """Connects and reads the greeting (``greeting``: the caller checks it is a 220, RFC 5321 §3.1)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            _, proto = await loop.create_connection(lambda: _Protocol(loop), host, port)
        c = cls(proto, timeout=timeout, peer=f"{host}:{port}")
        try:
            c.greeting = await c.read()
        except BaseException:
            c.close()
            raise
        return c

    @property
    def is_connected(self) -> bool:
        t = self._p.transport
        return self._p.error is None and t is not None and not t.is_closing()

    @property
    def reusable(self) -> bool:
        """Connected, and nothing unasked for arrived while it sat idle (a 421 before the server hung up)."""
        return self.is_connected and not self._p.replies and not self._p.lines and not self._p.buf

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        t = self._p.transport
        return t.get_extra_info("ssl_object") if t is not None else None

    def close(self) -> None:
        t = self._p.transport
        if t is not None and not t.is_closing():
            t.abort()
        if self._p.error is None:
            self._p.error = ConnectionLost("connection closed")

    # ------------------------------------------------------------------ wire

    def write(self, data: bytes) -> None:
        if self._p.error is not None:
            raise ConnectionLost(str(self._p.error), before_reply=not self._exchange_started)
        assert self._p.transport is not None
        self._p.transport.write(data)

    async def drain(self) -> None:
        p = self._p
        while p.paused and p.error is None:
            p.drain_waiter = p.loop.create_future()
            await self._wait(p.drain_waiter, "sending")
        if p.error is not None:
            raise ConnectionLost(str(p.error), before_reply=not self._exchange_started)

    async def _wait(self, fut: asyncio.Future[None], what: str) -> None:
        err = ReplyTimeout(f"no reply from {self.peer} within {self.timeout:g} s ({what})")
        handle = self._p.loop.call_later(self.timeout, _expire, fut, err)
        try:
            await fut
        finally:
            handle.cancel()

    async def read(self) -> Reply:
        """The next reply (in the order the commands went)."""
        p = self._p
        if not p.replies:
            if p.error is None:
                p.waiter = p.loop.create_future()
                try:
                    await self._wait(p.waiter, "reply")
                finally:
                    p.waiter = None
            if not p.replies:
                err = p.error or ConnectionLost("connection closed by the server")
                if isinstance(err, ConnectionLost):
                    raise ConnectionLost(str(err), before_reply=not self._exchange_started)
                raise err
        self._exchange_started = True
        return p.replies.popleft()

    async def command(self, line: str, encoding: str = "ascii") -> Reply:
        self._exchange_started = False
        self.write(line.encode(encoding) + b"\r\n")
        return await self.read()

    # ------------------------------------------------------------------ session

    async def ehlo(self, name: str) -> Reply:
        """EHLO; on 250 the extensions are parsed (RFC 5321 §4.1.1.1). The caller decides on a HELO fallback."""
        r = await self.command(f"EHLO {name}")
        self.extensions = {}
        if r.code == 250:
            for line in r.text.split("\n")[1:]:
                kw, _, params = line.strip().partition(" ")
                if kw:
                    self.extensions[kw.upper()] = params.strip()
        return r

    async def helo(self, name: str) -> Reply:
        self.extensions = {}
        return await self.command(f"HELO {name}")

    def supports(self, ext: str) -> bool:
        return ext.upper() in self.extensions

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> Reply:
        """STARTTLS; on 220 the handshake follows on the same transport (errors: ``ssl.SSLError``, ``OSError``,
        ``TimeoutError``). Any other reply is returned and nothing changes."""
        r = await self.command("STARTTLS")
        if r.code != 220:
            return r
        p = self._p
        assert p.transport is not None
        async with asyncio.timeout(self.timeout):
            tls = await p.loop.start_tls(p.transport, p, context, server_hostname=server_hostname)
        if tls is None:
            raise ConnectionLost("connection closed during the TLS handshake")
        p.transport = tls  # type: ignore[assignment]
        self.extensions = {}  # RFC 3207 §4.2: forget what was said in clear
        return r

    async def auth(self, user: str, password: str) -> Reply:
        """AUTH PLAIN, or LOGIN when PLAIN is not offered (RFC 4954); the final reply (235 on success)."""
        offered = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in offered:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            return await self.command(f"AUTH PLAIN {token}")
        if "LOGIN" in offered:
            r = await self.command("AUTH LOGIN")
            for secret in (user, password):
                if r.code != 334:
                    return r
                r = await self.command(base64.b64encode(secret.encode()).decode())
            return r
        raise NoMechanism(f"no AUTH mechanism in common (offered: {' '.join(offered) or 'none'})")

    async def rset(self) -> Reply:
        return await self.command("RSET")

    async def quit(self) -> None:
        try:
            if self.is_connected:
                await self.command("QUIT")
        except PipelineError:
            pass
        finally:
            self.close()

    # ------------------------------------------------------------------ a transaction

    async def send(self, mail: str, rcpts: Sequence[str], message: bytes, encoding: str = "ascii") -> Exchange:
        """MAIL FROM:``mail``, RCPT TO:each of ``rcpts`` (the text after the colon, parameters included), DATA and
        the message (CRLF line ends; dot-stuffed here).

        Pipelined (one write for MAIL, RCPTs and DATA; one for the message and its ".") when the server offers
        PIPELINING. The message goes only when MAIL and at least one RCPT were accepted and DATA answered 354; a
        354 after every RCPT failed gets an empty message's "." (RFC 2920 §3.1), whose reply is dropped. What was
        not sent is left to the caller (RSET or close).
        """
        ex = Exchange()
        self._exchange_started = False
        mail_line = b"MAIL FROM:" + mail.encode(encoding) + b"\r\n"
        rcpt_lines = [b"RCPT TO:" + r.encode(encoding) + b"\r\n" for r in rcpts]
        if self.supports("PIPELINING"):
            self.write(b"".join((mail_line, *rcpt_lines, b"DATA\r\n")))
            ex.mail = await self.read()
            ex.rcpts = [await self.read() for _ in rcpt_lines]
            go = await self.read()
            if go.code != 354:
                ex.data = go
                return ex
            if not ex.mail.ok or not any(r.ok for r in ex.rcpts):
                self.write(b".\r\n")
                await self.read()
                return ex
        else:
            self.write(mail_line)
            ex.mail = await self.read()
            if not ex.mail.ok:
                return ex
            ex.rcpts = []
            for line in rcpt_lines:
                self.write(line)
                ex.rcpts.append(await self.read())
            if not any(r.ok for r in ex.rcpts):
                return ex
            self.write(b"DATA\r\n")
            go = await self.read()
            if go.code != 354:
                ex.data = go
                return ex
        self.write(dot_stuff(message) + b".\r\n")
        ex.sent = True
        await self.drain()
        ex.data = await self.read()
        return ex


def _expire(fut: asyncio.Future[None], err: ReplyTimeout) -> None:
    if not fut.done():
        fut.set_exception(err)
