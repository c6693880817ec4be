"""A small SMTP client over asyncio streams, written so that every byte of the dialogue can be shown.

aiosmtplib sends well but hides the dialogue: there is no hook that sees each command and each reply line, and AUTH
payloads go through the same path as everything else, so a trace would have to patch its internals. The swaks-like
tool needs exactly that view, so this module speaks the client side of RFC 5321 itself: greeting, EHLO (HELO
fallback), STARTTLS (RFC 3207), AUTH PLAIN/LOGIN (RFC 4954), MAIL/RCPT/DATA with pipelining when offered (RFC 2920),
RSET, QUIT. A ``trace`` callback receives ``("C", line)`` / ``("S", line)`` pairs; AUTH secrets reach it masked.

Limits everywhere: a reply line is at most 64 KiB, a reply at most 1000 lines, every read has a timeout.
Kept free of server imports (mox's rule for reusable pieces).
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Trace = Callable[[str, str], None]  # (direction "C" | "S" | "*", line without CRLF)

MAX_LINE = 65536
MAX_REPLY_LINES = 1000
MASK = "********"
_REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*?)\r?\n?$", re.S)


class ClientError(Exception):
    """The conversation could not go on: connection refused or lost, timeout, TLS failure, garbled reply."""


@dataclass(frozen=True)
class ServerReply:
    """One reply, possibly multi-line (RFC 5321 §4.2.1): the code and the text of each line."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {' / '.join(line for line in self.lines if line) if self.lines else ''}".rstrip()


class SMTPReplyError(ClientError):
    """The server refused a step that the transaction cannot go on without."""

    def __init__(self, step: str, reply: ServerReply) -> None:
        super().__init__(f"{step}: {reply}")
        self.step = step
        self.reply = reply


@dataclass
class Transaction:
    """What the server said to one MAIL/RCPT…/DATA transaction, recipient by recipient."""

    mail: ServerReply | None = None
    rcpt: dict[str, ServerReply] = field(default_factory=dict)
    data: ServerReply | None = None

    @property
    def accepted(self) -> list[str]:
        return [r for r, rep in self.rcpt.items() if rep.ok]

    @property
    def refused(self) -> dict[str, ServerReply]:
        return {r: rep for r, rep in self.rcpt.items() if not rep.ok}

    @property
    def delivered(self) -> bool:
        """True when the server took responsibility for the message (RFC 5321 §4.1.1.4: 250 after the dot)."""
        return self.data is not None and self.data.ok and bool(self.accepted)


def dot_stuff(data: bytes) -> bytes:
    """CRLF line endings, a leading "." doubled (RFC 5321 §4.5.2), and the final CRLF before the "." terminator."""
    data = re.sub(rb"\r?\n|\r", b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


def is_ascii(s: str) -> bool:
    return s.isascii()


class SMTPClient:
    """One connection to one SMTP server. Use ``await SMTPClient.connect(...)``, then the verbs, then ``quit()``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, host: str,
                 timeout: float, trace: Trace | None, data_timeout: float) -> None:
        self.reader, self.writer = reader, writer
        self.host = host
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.trace = trace
        self.greeting: ServerReply | None = None
        self.extensions: dict[str, str] = {}  # EHLO keyword (upper case) → parameters
        self.esmtp = False
        self.closed = False
        self.payload_started = False  # the message bytes went out: a lost reply now leaves the outcome unknown

    # ------------------------------------------------------------------ connection

    @classmethod
    async def connect(cls, host: str, port: int, *, implicit_tls: ssl.SSLContext | None = None,
                      timeout: float = 30.0, data_timeout: float = 600.0, trace: Trace | None = None,
                      server_hostname: str | None = None) -> SMTPClient:
        """Connects (with TLS from the first byte when ``implicit_tls``, RFC 8314 §3.3) and reads the greeting."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=implicit_tls, limit=MAX_LINE,
                                        server_hostname=(server_hostname or host) if implicit_tls else None),
                timeout)
        except TimeoutError:
            raise ClientError(f"cannot connect to {host}:{port}: timed out after {timeout:g} s") from None
        except ssl.SSLError as e:
            raise ClientError(f"TLS handshake with {host}:{port} failed: {e.reason or e}") from None
        except ConnectionRefusedError:
            raise ClientError(f"cannot connect to {host}:{port}: connection refused") from None
        except OSError as e:
            raise ClientError(f"cannot connect to {host}:{port}: {e.strerror or e}") from None
        c = cls(reader, writer, host=host, timeout=timeout, trace=trace, data_timeout=data_timeout)
        if trace:
            trace("*", f"connected to {host}:{port}" + (" (implicit TLS)" if implicit_tls else ""))
            if implicit_tls:
                trace("*", c.tls_summary())
        c.greeting = await c.read_reply()
        if c.greeting.code != 220:  # RFC 5321 §3.1: 554 instead of 220 means "go away"
            await c.close()
            raise SMTPReplyError("greeting", c.greeting)
        return c

    @property
    def tls(self) -> ssl.SSLObject | None:
        return self.writer.get_extra_info("ssl_object")

    def tls_summary(self) -> str:
        t = self.tls
        if t is None:
            return "no TLS"
        cipher = t.cipher()
        return f"TLS {t.version()} {cipher[0] if cipher else '?'}"

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError):
            pass

    # ------------------------------------------------------------------ wire

    def _write(self, line: str, *, shown: str | None = None) -> None:
        if self.trace:
            self.trace("C", line if shown is None else shown)
        self.writer.write(line.encode("utf-8") + b"\r\n")

    async def _drain(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except TimeoutError:
            raise ClientError(f"timed out sending to {self.host}") from None
        except (OSError, ssl.SSLError) as e:
            raise ClientError(f"connection to {self.host} lost: {e}") from None

    async def read_reply(self, timeout: float | None = None) -> ServerReply:
        """Reads one complete reply: lines "NNN-text" until "NNN text" (RFC 5321 §4.2.1)."""
        code: int | None = None
        lines: list[str] = []
        while True:
            try:
                raw = await asyncio.wait_for(self.reader.readline(), timeout or self.timeout)
            except TimeoutError:
                raise ClientError(f"no reply from {self.host} within {timeout or self.timeout:g} s") from None
            except (ValueError, asyncio.LimitOverrunError):
                raise ClientError(f"reply line from {self.host} longer than {MAX_LINE} bytes") from None
            except (OSError, ssl.SSLError) as e:
                raise ClientError(f"connection to {self.host} lost: {e}") from None
            if not raw:
                raise ClientError(f"connection closed by {self.host}")
            m = _REPLY_LINE.match(raw)
            if not m or (code is not None and int(m.group(1)) != code):
                raise ClientError(f"garbled reply from {self.host}: {raw[:80]!r}")
            code = int(m.group(1))
            text = m.group(3).decode("utf-8", "replace")
            if self.trace:
                self.trace("S", raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            lines.append(text)
            if m.group(2) == b" ":
                return ServerReply(code, tuple(lines))
            if len(lines) >= MAX_REPLY_LINES:
                raise ClientError(f"reply from {self.host} has more than {MAX_REPLY_LINES} lines")

    async def command(self, line: str, *, shown: str | None = None) -> ServerReply:
        self._write(line, shown=shown)
        await self._drain()
        return await self.read_reply()

    # ------------------------------------------------------------------ verbs

    async def ehlo(self, name: str) -> ServerReply:
        """EHLO, falling back to HELO when the server does not speak ESMTP (RFC 5321 §3.2)."""
        r = await self.command(f"EHLO {name}")
        if r.code == 250:
            self.esmtp = True
            self.extensions = {}
            for line in r.lines[1:]:
                kw, _, params = line.strip().partition(" ")
                if kw:
                    self.extensions[kw.upper()] = params.strip()
            return r
        if r.code >= 500:
            r = await self.command(f"HELO {name}")
            self.esmtp, self.extensions = False, {}
            if r.code == 250:
                return r
        raise SMTPReplyError("EHLO", r)

    def has(self, ext: str) -> bool:
        return ext.upper() in self.extensions

    @property
    def auth_mechanisms(self) -> list[str]:
        return self.extensions.get("AUTH", "").upper().split() if self.has("AUTH") else []

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None) -> ServerReply:
        """STARTTLS (RFC 3207 §4); the caller sends EHLO again afterwards (§4.2: all knowledge is discarded)."""
        if not self.has("STARTTLS"):
            raise ClientError(f"{self.host} does not offer STARTTLS")
        r = await self.command("STARTTLS")
        if r.code != 220:
            raise SMTPReplyError("STARTTLS", r)
        try:
            await asyncio.wait_for(self.writer.start_tls(context, server_hostname=server_hostname or self.host),
                                   self.timeout)
        except TimeoutError:
            raise ClientError(f"TLS handshake with {self.host} timed out") from None
        except ssl.SSLCertVerificationError as e:
            raise ClientError(f"TLS certificate of {self.host} not trusted: {e.verify_message}") from None
        except (ssl.SSLError, OSError) as e:
            raise ClientError(f"TLS handshake with {self.host} failed: {e}") from None
        self.extensions, self.esmtp = {}, False
        if self.trace:
            self.trace("*", self.tls_summary())
        return r

    async def auth(self, user: str, password: str, mechanism: str | None = None) -> ServerReply:
        """AUTH PLAIN (RFC 4616) or LOGIN; what the trace shows of the credentials is masked."""
        offered = self.auth_mechanisms
        mech = (mechanism or next((m for m in ("PLAIN", "LOGIN") if m in offered), "")).upper()
        if not mech:
            raise ClientError(f"{self.host} offers no AUTH mechanism this client knows "
                              f"(offered: {' '.join(offered) or 'none'})")
        if mech == "PLAIN":
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            r = await self.command(f"AUTH PLAIN {token}", shown=f"AUTH PLAIN {MASK}")
        elif mech == "LOGIN":
            r = await self.command("AUTH LOGIN")
            for secret in (user, password):
                if r.code != 334:
                    break
                r = await self.command(base64.b64encode(secret.encode()).decode(), shown=MASK)
        else:
            raise ClientError(f"AUTH {mech} is not supported by this client (PLAIN, LOGIN)")
        if not 200 <= r.code < 300:  # 235 per RFC 4954 §6; sinks such as Postfix's smtp-sink answer 250
            raise SMTPReplyError("AUTH", r)
        return r

    async def rset(self) -> ServerReply:
        return await self.command("RSET")

    async def quit(self) -> None:
        """QUIT politely, then close; a server that already hung up is not an error here."""
        try:
            if not self.closed:
                await self.command("QUIT")
        except ClientError:
            pass
        finally:
            await self.close()

    # ------------------------------------------------------------------ a transaction

    def _mail_params(self, sender: str, recipients: Sequence[str], data: bytes) -> str:
        params = []
        if self.has("SIZE"):
            params.append(f"SIZE={len(data)}")  # RFC 1870 §6
        if self.has("8BITMIME") and not data.isascii():
            params.append("BODY=8BITMIME")  # RFC 6152 §3
        if not (is_ascii(sender) and all(is_ascii(r) for r in recipients)):
            if not self.has("SMTPUTF8"):  # RFC 6531 §3.4
                raise ClientError(f"{self.host} does not offer SMTPUTF8, needed for non-ASCII addresses")
            params.append("SMTPUTF8")
        return "".join(" " + p for p in params)

    async def send(self, sender: str, recipients: Sequence[str], data: bytes,
                   data_trace_lines: int = 40) -> Transaction:
        """MAIL FROM, RCPT TO each, DATA — as one pipelined group when the server offers PIPELINING.

        Refused recipients are recorded, not raised: the transaction goes on for the others. Raises
        ``SMTPReplyError`` when MAIL is refused; returns without DATA when every recipient is refused.
        """
        tx = Transaction()
        self.payload_started = False
        mail_line = f"MAIL FROM:<{sender}>{self._mail_params(sender, recipients, data)}"
        if self.has("PIPELINING"):
            # RFC 2920 §3.1: MAIL, RCPT… and DATA may go in one write; DATA must be last in the group.
            self._write(mail_line)
            for r in recipients:
                self._write(f"RCPT TO:<{r}>")
            self._write("DATA")
            await self._drain()
            tx.mail = await self.read_reply()
            for r in recipients:
                tx.rcpt[r] = await self.read_reply()
            go = await self.read_reply()
            if go.code == 354 and not (tx.mail.ok and tx.accepted):
                # RFC 2920 §3.1: a 354 after every RCPT failed: end the (empty) message so nothing is delivered.
                self._write(".", shown=".")
                await self._drain()
                await self.read_reply()
            if not tx.mail.ok:
                raise SMTPReplyError("MAIL FROM", tx.mail)
            if go.code != 354:
                tx.data = go if tx.accepted else None
                await self.rset()  # MAIL was accepted and the transaction is still open (RFC 5321 §4.1.1.5)
                return tx
            if not tx.accepted:
                return tx
        else:
            tx.mail = await self.command(mail_line)
            if not tx.mail.ok:
                raise SMTPReplyError("MAIL FROM", tx.mail)
            for r in recipients:
                tx.rcpt[r] = await self.command(f"RCPT TO:<{r}>")
            if not tx.accepted:
                await self.rset()
                return tx
            go = await self.command("DATA")
            if go.code != 354:
                tx.data = go
                await self.rset()
                return tx
        tx.data = await self._payload(data, data_trace_lines)
        return tx

    async def _payload(self, data: bytes, trace_lines: int) -> ServerReply:
        """The message, dot-stuffed, then "." (RFC 5321 §4.1.1.4); the 250 may take long (``data_timeout``)."""
        body = dot_stuff(data)
        if self.trace:
            lines = body.split(b"\r\n")[:-1]
            for raw in lines[:trace_lines]:
                self.trace("C", raw.decode("utf-8", "replace"))
            if len(lines) > trace_lines:
                rest = lines[trace_lines:]
                self.trace("C", f"[… {len(rest)} more lines, {sum(len(x) + 2 for x in rest)} bytes]")
            self.trace("C", ".")
        self.payload_started = True
        self.writer.write(body + b".\r\n")
        await self._drain()
        return await self.read_reply(self.data_timeout)
