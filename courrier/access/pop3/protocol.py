"""The POP3 session (RFC 1939): AUTHORIZATION → TRANSACTION → UPDATE, one ``pop3_<verb>`` method per command.

Messages are served from a snapshot taken at login (RFC 1939 §5: message numbers do not change during a session);
DELE only marks, and the files are removed at QUIT, in the UPDATE state. One session per maildrop ([IN-USE]).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl

from courrier import log
from courrier.access.auth import Authenticator, Mailroot
from courrier.access.pop3 import replies as R
from courrier.access.pop3.commands import (
    AUTHORIZATION,
    COMMANDS,
    MAX_AUTH_LINE,
    MAX_ERRORS,
    MAX_LINE,
    TRANSACTION,
)
from courrier.auth import Limited, sasl
from courrier.mailbox.api import STREAM_BATCH, Folder, MailStore, Msg, Root, Stream, take

_UIDL_OK = re.compile(r"^[\x21-\x7e]{1,70}$")
DISCARD_MAX = 1 << 20  # octets of one over-long line thrown away before the session is closed


class LineTooLong(Exception):
    """A line over the limit was read and discarded: answer -ERR and go on."""


def _head_and_lines(stream: Stream, n: int) -> bytes:
    """The message's start up to its header section and ``n`` lines of its body (or a little more): what TOP sends,
    read from the stream without the rest of a large message."""
    buf = bytearray()
    body_at = -1
    for chunk in stream.chunks():
        buf += chunk
        if body_at < 0:
            body_at = 2 if buf.startswith(b"\r\n") else buf.find(b"\r\n\r\n")
            body_at = body_at if body_at <= 2 else body_at + 4
        if body_at >= 0 and buf.count(b"\r\n", body_at) > n:
            break
    return bytes(buf)


class Stuffer:
    """RFC 1939 §3 byte-stuffing of a multi-line response given in pieces (CRLF): a line starting with "." gets
    another, a line cut between two pieces included; ``end`` closes the response with CRLF.CRLF."""

    def __init__(self) -> None:
        self.bol, self.last = True, b""

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        out = chunk.replace(b"\n.", b"\n..")  # CRLF: every LF ends a line
        if self.bol and chunk.startswith(b"."):
            out = b"." + out
        self.bol, self.last = chunk.endswith(b"\n"), chunk[-2:] if len(chunk) > 1 else (self.last + chunk)[-2:]
        return out

    def end(self) -> bytes:
        return (b"" if self.last in (b"", b"\r\n") else b"\r\n") + b".\r\n"


class POP3Server:
    """One POP3 service (both ``pop3`` and ``pop3s`` listeners): shared maildrop locks."""

    def __init__(self, *, store: MailStore, auth: Authenticator, tls_context: ssl.SSLContext | None,
                 idle_timeout: float) -> None:
        self.store = store
        self.auth = auth
        self.tls_context = tls_context
        self.idle_timeout = max(idle_timeout, 600.0)  # RFC 1939 §3: at least 10 minutes
        self.locked: set[Root] = set()  # the roots a session holds (RFC 2449 §8.1.1)

    def handler(self, implicit_tls: bool):  # noqa: ANN201 - a Handler for StreamListener
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await POP3Session(self, reader, writer, implicit_tls).run()

        return handle


def uidl_of(m: Msg) -> str:
    """RFC 1939 §7 unique-id: the Maildir base name when it fits (1-70 printable), else its digest."""
    return m.base if _UIDL_OK.match(m.base) else hashlib.sha1(m.base.encode()).hexdigest()


class POP3Session:
    def __init__(self, server: POP3Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 tls: bool) -> None:
        self.server = server
        self.store = server.store
        self.reader, self.writer = reader, writer
        self.tls = tls
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer_ip = str(peer[0])
        self.state = AUTHORIZATION
        self.user: str | None = None
        self.root: Mailroot | None = None
        self.inbox: Folder | None = None  # the store's INBOX of ``root``: the one mailbox POP3 sees
        self.msgs: list[Msg] = []
        self.deleted: set[int] = set()  # message numbers
        self.errors = 0
        self.done = False

    # ------------------------------------------------------------------ I/O

    def send(self, *lines: str | bytes) -> None:
        for line in lines:
            self.writer.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    async def readline(self, limit: int = MAX_LINE) -> bytes | None:
        """One line without its CRLF; None when the session must end (EOF, idle timeout, an endless line).

        A line longer than ``limit`` raises :class:`LineTooLong` once it has been read and thrown away, so the
        caller answers -ERR and the session goes on (RFC 2449 §4 bounds command lines; we never buffer more)."""
        try:
            line = await asyncio.wait_for(self._read_bounded(), self.server.idle_timeout)
        except TimeoutError:
            self.send(R.TIMEOUT)  # RFC 1939 §3: autologout timer, without entering UPDATE
            return None
        except asyncio.IncompleteReadError:
            return None
        if line is None:
            self.send(R.LINE_TOO_LONG)
            return None
        if len(line) > limit:
            raise LineTooLong
        return line.rstrip(b"\r\n")

    async def _read_bounded(self) -> bytes | None:
        """Reads to LF; a line beyond the stream's buffer is skipped (LineTooLong) up to DISCARD_MAX octets, beyond
        that None (the client is not speaking POP3)."""
        dropped = 0
        while True:
            try:
                line = await self.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as e:
                if dropped > DISCARD_MAX:
                    return None
                n = max(e.consumed, 1)
                await self.reader.readexactly(n)
                dropped += n
                continue
            if dropped:
                raise LineTooLong
            return line

    async def run(self) -> None:
        self.send(R.GREETING)
        try:
            while not self.done:
                await self.writer.drain()
                try:
                    line = await self.readline(MAX_AUTH_LINE)  # AUTH with an initial response may be long
                    if len(line or b"") > MAX_LINE and not line[:5].upper().startswith(b"AUTH "):  # RFC 2449 §4
                        raise LineTooLong
                except LineTooLong:
                    self.error(R.LINE_TOO_LONG)
                    if self.errors >= MAX_ERRORS:
                        self.send(R.TOO_MANY_ERRORS)
                        break
                    continue
                if line is None:
                    break
                verb, _, arg = line.decode("utf-8", "replace").partition(" ")
                verb = verb.upper()
                cmd = COMMANDS.get(verb)
                if cmd is None:
                    self.error(R.UNKNOWN)
                elif not cmd.allowed(self.state):  # the row's states, checked here only (RFC 1939 §3)
                    self.error(R.BAD_STATE)
                else:
                    try:
                        await getattr(self, cmd.handler)(arg)
                    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                        raise
                    except Exception as e:  # noqa: BLE001 - a bug costs one command, never the server or a hang
                        log.event("pop3.bug", level="error", user=self.user, error=repr(e)[:300])
                        self.error(R.INTERNAL_ERROR)
                if self.errors >= MAX_ERRORS:
                    self.send(R.TOO_MANY_ERRORS)
                    break
            await self.writer.drain()
        except asyncio.CancelledError:
            self.send(R.SHUTDOWN)
            raise
        finally:
            if self.root is not None:
                self.server.locked.discard(self.root.root)

    def error(self, reply: str) -> None:
        self.errors += 1
        self.send(reply)

    # ------------------------------------------------------------------ AUTHORIZATION

    def capabilities(self) -> list[str]:
        """RFC 2449 §6: the capabilities for the current state."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION courrier"]
        if not self.server.auth.cfg.capture_mode:
            caps.append("EXPIRE NEVER")  # RFC 2449 §6.7; capture mode's retention does delete old messages
        if self.state == AUTHORIZATION:
            if not self.tls and self.server.tls_context is not None:
                caps.append("STLS")
            if self.server.auth.plaintext_allowed(self.tls, self.peer_ip):
                caps += ["USER", "SASL PLAIN"]
        return caps

    async def pop3_capa(self, arg: str) -> None:
        self.send(R.CAPA, *self.capabilities(), ".")

    async def pop3_quit(self, arg: str) -> None:
        """RFC 1939 §6: QUIT in TRANSACTION enters UPDATE: the DELE-marked messages are removed now."""
        if self.state == TRANSACTION and self.deleted and self.root is not None:
            uids = [self.msgs[n - 1].uid for n in self.deleted]
            try:
                await self.store.run(self.store.index.expunge, self.inbox, uids)
            except OSError as e:
                log.event("pop3.update_failed", level="error", user=self.user, error=str(e))
                self.send(R.STORAGE_ERROR)
                self.done = True
                return
            self.store.notify(self.inbox)
        self.send(R.BYE)
        self.done = True

    async def pop3_stls(self, arg: str) -> None:
        """RFC 2595 §4: STLS, then a fresh AUTHORIZATION state; anything pipelined after it is discarded."""
        if self.tls:
            self.error(R.TLS_ACTIVE)
            return
        if self.server.tls_context is None:
            self.error(R.TLS_UNAVAILABLE)
            return
        self.send(R.STLS_GO)
        await self.writer.drain()
        self.reader._buffer.clear()  # type: ignore[attr-defined]  # no plaintext command injection (CVE-2011-0411)
        await self.writer.start_tls(self.server.tls_context, ssl_handshake_timeout=30)
        self.tls = True
        self.user = None

    async def pop3_user(self, arg: str) -> None:
        if not self.server.auth.plaintext_allowed(self.tls, self.peer_ip):
            self.error(R.PLAINTEXT_DISABLED)
            return
        if not arg.strip():
            self.error(R.SYNTAX)
            return
        self.user = arg.strip()
        self.send(R.USER_OK)

    async def pop3_pass(self, arg: str) -> None:
        if self.user is None:
            self.error(R.USER_FIRST)
            return
        user, self.user = self.user, None
        await self.login(user, arg)

    async def pop3_auth(self, arg: str) -> None:
        """RFC 5034: AUTH PLAIN [initial-response], decoded by courrier.auth.sasl; bare AUTH lists mechanisms (as
        many clients expect). A client the limiter refuses gets ``-ERR [SYS/TEMP]`` before any exchange."""
        mech, _, initial = arg.strip().partition(" ")
        if not mech:
            self.send(R.OK, "PLAIN", ".")
            return
        if mech.upper() != "PLAIN":
            self.error(R.UNSUPPORTED_MECH)
            return
        auth = self.server.auth
        if not auth.plaintext_allowed(self.tls, self.peer_ip):
            self.error(R.PLAINTEXT_DISABLED)
            return
        if auth.blocked(self.peer_ip, "pop3"):
            self.error(R.TOO_MANY_FAILURES)
            return
        try:
            creds = await sasl.exchange("PLAIN", initial or None, self._auth_challenge)
        except LineTooLong:
            self.error(R.LINE_TOO_LONG)
            return
        except sasl.Cancelled:
            if not self.done:
                self.error(R.AUTH_CANCELLED)
            return
        except sasl.AuthzDenied as e:  # RFC 4616 §2: no acting as another user
            auth.malformed(self.peer_ip, "pop3", str(e))
            self.error(R.AUTHZ_FAILED)
            return
        except sasl.Malformed as e:
            auth.malformed(self.peer_ip, "pop3", str(e))
            self.error(R.SYNTAX)
            return
        await self.login(creds.user, creds.password)

    async def _auth_challenge(self, challenge: str) -> str | None:
        """RFC 5034 §4: ``+ challenge``, then one response line (None: the client went away)."""
        self.send(f"+ {challenge}")
        await self.writer.drain()
        line = await self.readline(MAX_AUTH_LINE)
        if line is None:
            self.done = True
            return None
        return line.decode("ascii", "replace")

    async def login(self, user: str, password: str) -> None:
        try:
            root = await self.server.auth.login(user, password, self.peer_ip, "pop3")
        except Limited:
            self.error(R.TOO_MANY_FAILURES)  # RFC 3206 §4 [SYS/TEMP]: not checked, try later
            return
        if root is None:
            self.error(R.AUTH_FAILED)
            return
        if root.root in self.server.locked:  # RFC 2449 §8.1.1
            self.error(R.IN_USE)
            return
        self.server.locked.add(root.root)
        self.root = root
        try:
            self.inbox = self.store.folder(root.root, "INBOX")
            snap = await self.store.run(self.store.index.sync, self.inbox)
        except OSError as e:
            self.server.locked.discard(root.root)
            self.root = None
            log.event("pop3.mailbox_error", level="error", user=user, error=str(e))
            self.error(R.STORAGE_ERROR)
            return
        self.msgs = list(snap.messages)
        self.state = TRANSACTION
        self.send(f"{R.LOGGED_IN} ({len(self.msgs)} messages)")

    # ------------------------------------------------------------------ TRANSACTION

    def message(self, arg: str) -> tuple[int, Msg] | None:
        """Parses a message number (RFC 1939 §5: never a deleted one)."""
        try:
            n = int(arg.split()[0])
        except (ValueError, IndexError):
            self.error(R.SYNTAX)
            return None
        if not 1 <= n <= len(self.msgs):
            self.error(R.NO_SUCH_MSG)
            return None
        if n in self.deleted:
            self.error(R.MSG_DELETED)
            return None
        return n, self.msgs[n - 1]

    def live(self) -> list[tuple[int, Msg]]:
        return [(i, m) for i, m in enumerate(self.msgs, 1) if i not in self.deleted]

    async def pop3_noop(self, arg: str) -> None:
        self.send(R.NOOP)

    async def pop3_stat(self, arg: str) -> None:
        live = self.live()
        self.send(f"+OK {len(live)} {sum(m.size for _, m in live)}")

    async def pop3_list(self, arg: str) -> None:
        if arg.strip():
            found = self.message(arg)
            if found:
                self.send(f"+OK {found[0]} {found[1].size}")
            return
        self.send(R.LIST_FOLLOWS, *(f"{n} {m.size}" for n, m in self.live()), ".")

    async def pop3_uidl(self, arg: str) -> None:
        if arg.strip():
            found = self.message(arg)
            if found:
                self.send(f"+OK {found[0]} {uidl_of(found[1])}")
            return
        self.send(R.UIDL_FOLLOWS, *(f"{n} {uidl_of(m)}" for n, m in self.live()), ".")

    async def pop3_dele(self, arg: str) -> None:
        found = self.message(arg)
        if found:
            self.deleted.add(found[0])
            self.send(R.DELETED)

    async def pop3_rset(self, arg: str) -> None:
        self.deleted.clear()
        self.send(R.RESET)

    def send_multiline(self, crlf: bytes) -> None:
        """RFC 1939 §3: byte-stuff lines starting with "." and end with CRLF.CRLF."""
        if crlf.startswith(b"."):
            crlf = b"." + crlf
        crlf = crlf.replace(b"\r\n.", b"\r\n..")
        if crlf and not crlf.endswith(b"\r\n"):
            crlf += b"\r\n"
        self.writer.write(crlf + b".\r\n")

    async def pop3_retr(self, arg: str) -> None:
        """RFC 1939 §7 RETR: the message read from its Stream STREAM_BATCH at a time and byte-stuffed as it goes,
        never whole in memory. One that goes away meanwhile (expunged over IMAP) cannot be finished once the first
        line is out: the connection is closed."""
        found = self.message(arg)
        if not found:
            return
        stream = await self.store.run(self.store.index.open, self.inbox, found[1])
        if stream is None:
            self.error(R.NO_SUCH_MSG)
            return
        try:
            self.send(f"+OK {stream.size} octets")
            chunks = iter(stream.chunks())
            stuffer = Stuffer()
            while got := await self.store.run(take, chunks, STREAM_BATCH):
                for chunk in got:
                    self.writer.write(stuffer.feed(chunk))
                del got
                await self.writer.drain()
            self.writer.write(stuffer.end())
        except ConnectionError:
            raise
        except OSError as e:  # StreamBroken, or the database gone: no -ERR can follow half a message
            log.event("pop3.stream_broken", level="warn", user=self.user, error=str(e)[:200])
            self.writer.close()
            raise ConnectionResetError("message gone while being sent") from None
        finally:
            await self.store.run(stream.close)

    async def pop3_top(self, arg: str) -> None:
        """RFC 1939 §7: the header, the blank line, and the first n lines of the body."""
        parts = arg.split()
        if len(parts) != 2 or not parts[1].isdigit():
            self.error(R.SYNTAX)
            return
        found = self.message(parts[0])
        if not found:
            return
        stream = await self.store.run(self.store.index.open, self.inbox, found[1])
        if stream is None:
            self.error(R.NO_SUCH_MSG)
            return
        try:
            crlf = await self.store.run(_head_and_lines, stream, int(parts[1]))
        finally:
            await self.store.run(stream.close)
        i = 0 if crlf.startswith(b"\r\n") else crlf.find(b"\r\n\r\n") + 2  # an empty header: the body starts at once
        if i < 2 and not crlf.startswith(b"\r\n"):
            out = crlf  # no blank line: it is all header
        else:
            head, body = crlf[:i + 2], crlf[i + 2:]
            lines = body.split(b"\r\n")
            n = int(parts[1])  # TOP n 0: the header and the blank line only
            out = head + b"\r\n".join(lines[:n]) + (b"\r\n" if n and n < len(lines) else b"")
        self.send(R.MSG_FOLLOWS)
        self.send_multiline(out)
