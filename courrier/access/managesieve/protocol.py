"""The ManageSieve session (RFC 5804): a capability greeting, STARTTLS, AUTHENTICATE PLAIN through the shared
login gate (courrier/access/auth.py → courrier/auth: one failure limiter with SMTP, IMAP, POP3 and HTTP), then the
script commands over ``courrier.sieve.store``. One ``ms_<verb>`` method per row of the command table.

Bounds, as the other listeners: a command line of at most ``MAX_LINE`` octets, quoted strings of 1024 (§4),
literals of a script's maximum size once authenticated and of a SASL response before, ``MAX_ERRORS`` errors before
``BYE``, and the ``[limits] idle_timeout`` between commands. Plain-text AUTHENTICATE only over TLS, or from loopback
with ``trust_loopback`` (RFC 5804 §2.1, as IMAP's LOGINDISABLED).
"""

from __future__ import annotations

import asyncio
import re
import ssl

from courrier import log
from courrier.access.auth import Authenticator
from courrier.access.managesieve.commands import (
    AUTH,
    COMMANDS,
    MAX_ERRORS,
    MAX_LINE,
    MAX_LITERAL_BEFORE_AUTH,
    MAX_QUOTED,
    NONAUTH,
)
from courrier.auth import Limited, sasl
from courrier.sieve.interp import MAX_REDIRECTS
from courrier.sieve.script import EXTENSIONS, MAX_SCRIPT, SieveSyntaxError, compile_script
from courrier.sieve.store import SieveStore, SieveStoreError

_LITERAL = re.compile(rb"\{(\d{1,9})(\+?)\}$")
_TOKEN = re.compile(rb'\s*(?:"((?:[^"\\\r\n]|\\["\\])*)"|(\d{1,10})|\{(\d{1,9})\+?\}|([A-Za-z]+))')


class ProtocolError(Exception):
    """A command line that does not parse: answer NO with this text."""


class Gone(Exception):
    """The client went away, idled out or sent something endless: end the session."""


def quoted(s: str) -> str:
    """A response string: quoted when it may be (RFC 5804 §4), else a literal."""
    b = s.encode("utf-8")
    if len(b) <= MAX_QUOTED and "\r" not in s and "\n" not in s:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{{{len(b)}}}\r\n{s}"


class ManageSieveServer:
    def __init__(self, *, scripts: SieveStore, auth: Authenticator, tls_context: ssl.SSLContext | None,
                 idle_timeout: float, hostname: str) -> None:
        self.scripts = scripts
        self.auth = auth
        self.tls_context = tls_context
        self.idle_timeout = idle_timeout
        self.hostname = hostname

    def handler(self, implicit_tls: bool = False):  # noqa: ANN201 - a Handler for StreamListener
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await ManageSieveSession(self, reader, writer, implicit_tls).run()

        return handle


class ManageSieveSession:
    def __init__(self, server: ManageSieveServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 tls: bool) -> None:
        self.server = server
        self.reader, self.writer = reader, writer
        self.tls = tls
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer_ip = str(peer[0])
        self.state = NONAUTH
        self.user: str | None = None
        self.errors = 0
        self.done = False

    # ------------------------------------------------------------------ I/O

    def send(self, *lines: str) -> None:
        for line in lines:
            self.writer.write(line.encode("utf-8") + b"\r\n")

    def ok(self, text: str = "", code: str = "") -> None:
        self.send("OK" + (f" ({code})" if code else "") + (f" {quoted(text)}" if text else ""))

    def no(self, text: str, code: str = "", *, counts: bool = True) -> None:
        """NO; ``counts``: a protocol error (MAX_ERRORS of them end the session), not a refused request."""
        if counts:
            self.errors += 1
        self.send("NO" + (f" ({code})" if code else "") + f" {quoted(text)}")

    async def _line(self) -> bytes:
        try:
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), self.server.idle_timeout)
        except TimeoutError:
            self.send('BYE "Idle timeout"')
            raise Gone() from None
        except asyncio.LimitOverrunError:
            self.send('BYE "Line too long"')
            raise Gone() from None
        except asyncio.IncompleteReadError:
            raise Gone() from None
        if len(line) > MAX_LINE:
            self.send('BYE "Line too long"')
            raise Gone()
        return line.rstrip(b"\r\n")

    async def read_command(self) -> tuple[str, list[str | int]]:
        """One command: its name and arguments, literals read in (RFC 5804 §4 ``{n+}`` and ``{n}``)."""
        limit = MAX_SCRIPT + 1024 if self.state == AUTH else MAX_LITERAL_BEFORE_AUTH
        text = b""
        while True:
            line = await self._line()
            m = _LITERAL.search(line)
            if m is None:
                text += line
                break
            n = int(m.group(1))
            if n > limit:
                # the literal cannot be skipped safely without reading it: too big means the session ends
                self.send(f'BYE (QUOTA/MAXSIZE) "Literal larger than {limit} octets"')
                raise Gone()
            try:
                data = await asyncio.wait_for(self.reader.readexactly(n), self.server.idle_timeout)
            except (TimeoutError, asyncio.IncompleteReadError):
                raise Gone() from None
            text += line[:m.start()] + b"\x00LIT" + str(len(data)).encode() + b"\x00" + data
        return self._parse(text)

    @staticmethod
    def _parse(text: bytes) -> tuple[str, list[str | int]]:
        m = re.match(rb"\s*([A-Za-z]+)", text)
        if not m:
            raise ProtocolError("Expected a command")
        name = m.group(1).decode().upper()
        pos = m.end()
        args: list[str | int] = []
        while pos < len(text):
            if text[pos:pos + 1] in (b" ", b"\t"):
                pos += 1
                continue
            if text.startswith(b"\x00LIT", pos):
                end = text.index(b"\x00", pos + 4)
                n = int(text[pos + 4:end])
                try:
                    args.append(text[end + 1:end + 1 + n].decode("utf-8"))
                except UnicodeDecodeError:
                    raise ProtocolError("String is not UTF-8 (RFC 5804 §4)") from None
                pos = end + 1 + n
                continue
            t = _TOKEN.match(text, pos)
            if t is None or t.end() == pos:
                raise ProtocolError("Syntax error in arguments")
            if t.group(1) is not None:
                raw = t.group(1)
                if len(raw) > MAX_QUOTED:
                    raise ProtocolError("Quoted string longer than 1024 octets")
                try:
                    args.append(re.sub(rb'\\(["\\])', rb"\1", raw).decode("utf-8"))
                except UnicodeDecodeError:
                    raise ProtocolError("String is not UTF-8 (RFC 5804 §4)") from None
            elif t.group(2) is not None:
                args.append(int(t.group(2)))
            else:
                raise ProtocolError("Syntax error in arguments")
            pos = t.end()
        return name, args

    async def run(self) -> None:
        self.send_capabilities()
        self.ok("courrier ManageSieve ready")
        try:
            while not self.done:
                await self.writer.drain()
                try:
                    name, args = await self.read_command()
                except ProtocolError as e:
                    self.no(str(e))
                    name = ""
                except Gone:
                    break
                if name:
                    cmd = COMMANDS.get(name)
                    if cmd is None:
                        self.no(f"Unknown command {name[:40]}")
                    elif not cmd.allowed(self.state):
                        self.no("Authenticate first" if self.state == NONAUTH else "Already authenticated")
                    else:
                        try:
                            await getattr(self, cmd.handler)(args)
                        except (TimeoutError, ConnectionError, ssl.SSLError):
                            raise
                        except Gone:
                            break
                        except (IndexError, TypeError, ValueError):
                            self.no(f"Bad arguments for {name}")
                        except Exception as e:  # noqa: BLE001 - a bug costs one command, never the server
                            log.event("managesieve.bug", level="error", user=self.user, error=repr(e)[:300])
                            self.no("Internal error", "TRYLATER")
                if self.errors >= MAX_ERRORS:
                    self.send('BYE "Too many errors"')
                    break
            await self.writer.drain()
        except asyncio.CancelledError:
            self.send('BYE (TRYLATER) "Server shutting down"')
            raise

    # ------------------------------------------------------------------ commands

    def send_capabilities(self) -> None:
        """RFC 5804 §1.7."""
        auth = self.server.auth
        mechs = "PLAIN" if auth.plaintext_allowed(self.tls, self.peer_ip) else ""
        lines = ['"IMPLEMENTATION" "courrier"', f'"SASL" "{mechs}"',
                 f'"SIEVE" "{" ".join(EXTENSIONS)}"', f'"MAXREDIRECTS" "{MAX_REDIRECTS}"', '"VERSION" "1.0"']
        if not self.tls and self.server.tls_context is not None and self.state == NONAUTH:
            lines.append('"STARTTLS"')
        if self.user:
            lines.append(f'"OWNER" {quoted(self.user)}')
        self.send(*lines)

    async def ms_capability(self, args: list[str | int]) -> None:
        self.send_capabilities()
        self.ok("Capability completed")

    async def ms_logout(self, args: list[str | int]) -> None:
        self.ok("Logout completed")
        self.done = True

    async def ms_noop(self, args: list[str | int]) -> None:
        if args:
            self.ok("Done", f"TAG {quoted(str(args[0]))}")
        else:
            self.ok("Done")

    async def ms_starttls(self, args: list[str | int]) -> None:
        if self.tls:
            self.no("TLS already active")
            return
        if self.server.tls_context is None:
            self.no("TLS not available")
            return
        self.ok("Begin TLS negotiation now")
        await self.writer.drain()
        self.reader._buffer.clear()  # type: ignore[attr-defined]  # no plaintext command injection (CVE-2011-0411)
        await self.writer.start_tls(self.server.tls_context, ssl_handshake_timeout=30)
        self.tls = True
        self.send_capabilities()  # RFC 5804 §2.2: the capabilities again, after the handshake
        self.ok("TLS negotiation successful")

    async def ms_authenticate(self, args: list[str | int]) -> None:
        """RFC 5804 §2.1: ``AUTHENTICATE "PLAIN" [initial]``; challenges and responses are strings."""
        if not args or not isinstance(args[0], str):
            self.no("Expected a mechanism")
            return
        if args[0].upper() != "PLAIN":
            self.no("Unsupported SASL mechanism")
            return
        auth = self.server.auth
        if not auth.plaintext_allowed(self.tls, self.peer_ip):
            self.no("Plain-text authentication needs TLS: use STARTTLS", "ENCRYPT-NEEDED")
            return
        if auth.blocked(self.peer_ip, "managesieve"):
            self.no("Too many failed logins, try later", "TRYLATER")
            return
        initial = str(args[1]) if len(args) > 1 else None
        try:
            creds = await sasl.exchange("PLAIN", initial, self._challenge)
        except sasl.Cancelled:
            if not self.done:
                self.no("Authentication cancelled")
            return
        except sasl.SASLError as e:
            auth.malformed(self.peer_ip, "managesieve", str(e))
            self.no(str(e))
            return
        try:
            root = await auth.login(creds.user, creds.password, self.peer_ip, "managesieve")
        except Limited:
            self.no("Too many failed logins, try later", "TRYLATER")
            return
        if root is None:
            self.no("Authentication failed")
            return
        self.user = root.user
        self.state = AUTH
        self.ok("Logged in")

    async def _challenge(self, challenge: str) -> str | None:
        self.send(quoted(challenge))
        await self.writer.drain()
        try:
            line = await self._line()
        except Gone:
            self.done = True
            return None
        m = _LITERAL.search(line)
        if m is not None:
            n = int(m.group(1))
            if n > MAX_LITERAL_BEFORE_AUTH:
                self.done = True
                return None
            try:
                data = await asyncio.wait_for(self.reader.readexactly(n), self.server.idle_timeout)
                await self._line()  # the CRLF ending the response
            except (TimeoutError, asyncio.IncompleteReadError, Gone):
                self.done = True
                return None
            return data.decode("ascii", "replace")
        text = line.decode("ascii", "replace").strip()
        if text.startswith('"') and text.endswith('"') and len(text) >= 2:
            text = text[1:-1]
        return text

    async def _store(self, fn, *args):  # noqa: ANN001, ANN202 - blocking store call off the loop
        return await asyncio.to_thread(fn, *args)

    def _refused(self, e: SieveStoreError) -> None:
        self.no(str(e), e.code, counts=False)

    async def ms_havespace(self, args: list[str | int]) -> None:
        name, size = str(args[0]), int(args[1])
        try:
            await self._store(self.server.scripts.check_space, self.user, name, size)
        except SieveStoreError as e:
            self._refused(e)
            return
        self.ok("Putscript would succeed")

    async def ms_putscript(self, args: list[str | int]) -> None:
        name, content = str(args[0]), str(args[1])
        try:
            await self._store(self.server.scripts.put, self.user, name, content)
        except SieveSyntaxError as e:
            self.no(str(e), counts=False)
            return
        except SieveStoreError as e:
            self._refused(e)
            return
        log.event("managesieve.put", user=self.user, script=name, size=len(content))
        self.ok("Script stored")

    async def ms_checkscript(self, args: list[str | int]) -> None:
        try:
            await self._store(compile_script, str(args[0]))
        except SieveSyntaxError as e:
            self.no(str(e), counts=False)
            return
        self.ok("Script is valid")

    async def ms_listscripts(self, args: list[str | int]) -> None:
        for s in await self._store(self.server.scripts.list, self.user):
            self.send(quoted(s.name) + (" ACTIVE" if s.active else ""))
        self.ok("Listscripts completed")

    async def ms_getscript(self, args: list[str | int]) -> None:
        content = await self._store(self.server.scripts.get, self.user, str(args[0]))
        if content is None:
            self.no("There is no script by that name", "NONEXISTENT", counts=False)
            return
        self.send(f"{{{len(content.encode('utf-8'))}}}\r\n{content}")
        self.ok("Getscript completed")

    async def ms_setactive(self, args: list[str | int]) -> None:
        try:
            await self._store(self.server.scripts.activate, self.user, str(args[0]))
        except SieveStoreError as e:
            self._refused(e)
            return
        log.event("managesieve.activate", user=self.user, script=str(args[0]))
        self.ok("Setactive completed")

    async def ms_deletescript(self, args: list[str | int]) -> None:
        try:
            await self._store(self.server.scripts.delete, self.user, str(args[0]))
        except SieveStoreError as e:
            self._refused(e)
            return
        self.ok("Deletescript completed")

    async def ms_renamescript(self, args: list[str | int]) -> None:
        try:
            await self._store(self.server.scripts.rename, self.user, str(args[0]), str(args[1]))
        except SieveStoreError as e:
            self._refused(e)
            return
        self.ok("Renamescript completed")
