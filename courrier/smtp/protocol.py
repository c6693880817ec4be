"""The SMTP server engine (RFC 5321) on asyncio: one ``SMTPProtocol`` per connection, one ``SMTPServer`` per listener.

Bytes arrive in ``data_received`` and are cut into work items (command lines, BDAT chunks) by a small parser; a
per-connection task takes the items in order and dispatches each verb through the command table
(``commands.COMMANDS``) to an ``smtp_<verb>`` method. DATA payloads bypass the queue: the parser feeds them straight
into a ``DataReader`` that streams to a spool file. Every decision about *who* and *what* is the ``Policy``'s; this
module only knows the protocol.

Replies are buffered and written when the client has nothing more pipelined (RFC 2920), so a pipelined group costs
one write.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any

from courrier import log
from courrier.auth import AuthGate, Limited, sasl
from courrier.config import LimitsConfig
from courrier.mail.envelope import Envelope, Recipient, TLSInfo
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import (
    Address,
    AddressError,
    parse_params,
    parse_path,
    split_path_and_params,
    xtext_decode,
)
from courrier.mail.reply import MailError, Reply
from courrier.net.commands import Command
from courrier.net.limits import ConnectionLimiter, Refusal, Slot
from courrier.smtp import replies as R
from courrier.smtp.commands import COMMANDS, HTTP_VERBS, Phase
from courrier.smtp.policy import Disconnect, Policy
from courrier.smtp.reader import DataReader, new_spool
from courrier.smtp.session import Session

MAX_COMMAND_LINE = 512  # RFC 5321 §4.5.3.1.4, including CRLF
MAX_AUTH_LINE = 12288  # RFC 4954 §4
MAX_BUFFERED = 1 << 20  # queued chunk bytes before reading is paused (back-pressure)
SHUTDOWN_GRACE = 30.0  # in-flight transactions get this long to finish on shutdown

# parser modes
_LINES, _DATA, _CHUNK, _HOLD = range(4)


def _announced_chunk(line: bytes) -> int | None:
    """The size of the chunk a BDAT line announces (RFC 3030 §2), None when it announces none: the parser then
    expects no chunk bytes, and a refused BDAT has nothing to skip."""
    parts = line.split()
    if len(parts) >= 2 and parts[1].isdigit() and len(parts[1]) <= 12:
        return int(parts[1])
    return None


class SMTPServer:
    """One SMTP listener: its role (policy), TLS setup and the connections it serves. Callable as a protocol factory."""

    def __init__(
        self,
        *,
        listener: str,
        hostname: str,
        policy: Policy,
        limits: LimitsConfig,
        limiter: ConnectionLimiter,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        trust_loopback: bool = True,
        spool_dir: str | None = None,
        postmaster_domain: str | None = None,
        auth_gate: AuthGate | None = None,
    ) -> None:
        self.listener = listener
        self.hostname = hostname
        self.postmaster_domain = postmaster_domain or hostname  # the domain of a bare RCPT TO:<Postmaster>
        self.policy = policy
        self.limits = limits
        self.limiter = limiter
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.trust_loopback = trust_loopback
        self.spool_dir = spool_dir
        # failed-login limiter shared with every protocol (the app passes its one gate; alone: a private one)
        self.auth_gate = auth_gate or AuthGate.from_limits(limits)
        self.connections: set[SMTPProtocol] = set()
        self.shutting_down = False

    def __call__(self) -> SMTPProtocol:
        return SMTPProtocol(self)

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Idle sessions get 421 now; sessions inside a transaction finish it (up to ``grace`` seconds) first."""
        self.shutting_down = True
        for c in list(self.connections):
            c.begin_shutdown()
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for c in list(self.connections):
            c.force_close()


class SMTPProtocol(asyncio.Protocol):
    """One SMTP connection: parser, dispatcher and the RFC 5321 state machine."""

    # slots: thousands of idle connections each keep one of these (issue 17: ≤ 5 KiB per idle connection)
    __slots__ = ("server", "policy", "limits", "loop", "transport", "session", "env", "_items", "_wakeup", "_buf",
                 "_mode", "_discarding_line", "_chunk_left", "_queued_bytes", "_paused", "_reader", "_data_done",
                 "_out", "_closed", "_task", "_last_activity", "_timer", "_errors", "_junk", "_bdat_spool",
                 "_bdat_size", "_bdat_failed", "_slot", "_in_transaction_work", "_shutdown", "_eof", "__weakref__")

    def __init__(self, server: SMTPServer) -> None:
        self.server = server
        self.policy = server.policy
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.env: Envelope | None = None
        self._items: deque[Any] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._buf = b""
        self._mode = _LINES
        self._discarding_line = False
        self._chunk_left = 0
        self._queued_bytes = 0
        self._paused = False
        self._reader: DataReader | None = None
        self._data_done: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._last_activity = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._errors = 0
        self._junk = 0  # commands that moved no mail since the last accepted message (commands.py: ``junk``)
        self._bdat_spool: Any = None
        self._bdat_size = 0
        self._bdat_failed: Reply | None = None
        self._slot: Slot | None = None  # this connection's place in the SMTP connection limits
        self._in_transaction_work = False
        self._shutdown = False
        self._eof = False  # the client has shut down its write side (half-close)

    # ------------------------------------------------------------------ connection lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        sock = transport.get_extra_info("sockname") or ("", 0)
        self.session = Session(
            peer_ip=str(peer[0]), peer_port=int(peer[1]), local_ip=str(sock[0]), local_port=int(sock[1]),
            listener=self.server.listener, hostname=self.server.hostname, trust_loopback=self.server.trust_loopback,
        )
        self._update_tls_info()
        self.server.connections.add(self)
        slot = self.server.limiter.acquire(self.session.peer_ip)
        if isinstance(slot, Refusal):
            refusal = R.TOO_MANY_CONNECTIONS if slot is Refusal.TOTAL else R.TOO_MANY_FROM_IP
            log.event("smtp.refused", level="warn", sid=self.session.id, ip=self.session.peer_ip, reason=refusal.text)
            self._write_reply(refusal)
            self._close()
            return
        self._slot = slot
        log.event("smtp.connect", sid=self.session.id, listener=self.server.listener, ip=self.session.peer_ip,
                  port=self.session.peer_port, tls=self.session.tls.version if self.session.tls else None)
        self._arm_timer()
        self._task = self.loop.create_task(self._run())

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server.connections.discard(self)
        if self._slot is not None:
            self._slot.release()
        if self._timer:
            self._timer.cancel()
        if self._data_done and not self._data_done.done():
            self._data_done.set_result(None)
        self._wake()
        if self.session:
            log.event("smtp.disconnect", sid=self.session.id, ip=self.session.peer_ip,
                      secs=f"{time.time() - self.session.started:.3f}")

    def begin_shutdown(self) -> None:
        self._shutdown = True
        if not self._in_transaction_work and not self._buf and not self._items and self._mode == _LINES:
            self._write_reply(R.SHUTTING_DOWN)
            self._close()

    def force_close(self) -> None:
        if not self._closed:
            self._write_reply(R.SHUTTING_DOWN)
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        if self.transport:
            self.transport.close()
        self._wake()

    def _update_tls_info(self) -> None:
        assert self.transport and self.session
        sslobj = self.transport.get_extra_info("ssl_object")
        if sslobj is not None:
            cipher = sslobj.cipher() or ("", "", None)
            self.session.tls = TLSInfo(version=sslobj.version() or "", cipher=cipher[0], bits=cipher[2])

    # ------------------------------------------------------------------ timeouts

    def _arm_timer(self) -> None:
        # One timer per connection, re-armed for the time left rather than reset on every read (cheaper).
        self._timer = self.loop.call_later(min(5.0, self.limits.idle_timeout, self.limits.data_timeout),
                                           self._check_timeout)

    def _check_timeout(self) -> None:
        if self._closed:
            return
        limit = self.limits.data_timeout if self._mode in (_DATA, _CHUNK) else self.limits.idle_timeout
        idle = time.monotonic() - self._last_activity
        if idle >= limit and not self._in_transaction_work:
            assert self.session
            log.event("smtp.timeout", level="warn", sid=self.session.id, ip=self.session.peer_ip,
                      phase="data" if self._mode in (_DATA, _CHUNK) else "command")
            self._write_reply(R.TIMEOUT)
            self._close()
            return
        self._timer = self.loop.call_later(max(0.05, min(5.0, limit - idle)), self._check_timeout)

    # ------------------------------------------------------------------ input parsing

    def data_received(self, data: bytes) -> None:
        self._last_activity = time.monotonic()
        if self._closed:
            return
        self._buf += data
        self._parse()

    def eof_received(self) -> bool | None:
        """The client shut down its write side (Exim does, right after a pipelined ``.``/``BDAT n LAST`` + QUIT).

        Every complete command already received is still executed and answered, in order, before the connection
        closes (RFC 5321 §4.1.1.10, §4.2; RFC 2920 §3.1): otherwise a message is delivered but its 250 is lost,
        and the client sends it again. ``_next_item`` reports the end once nothing complete is left; an
        unterminated last line is a fragment, never executed; a DATA payload without its end marker is not
        delivered. On plain TCP the transport stays open for our replies (half-close). Over TLS the client's
        close_notify makes asyncio's TLS layer close the connection itself (it has no half-close; TLS 1.2 has none
        either, RFC 5246 §7.2.1), so replies still pending there cannot be sent.
        """
        self._eof = True
        if self._data_done and not self._data_done.done():
            self._data_done.set_result(None)  # DATA ended without its end marker: smtp_data discards it
        self._wake()
        return self.transport is not None and self.transport.get_extra_info("sslcontext") is None

    def _parse(self) -> None:
        """Cuts the buffer into items according to the mode; stops at anything that needs the dispatcher first."""
        while self._buf and not self._closed:
            if self._mode == _DATA:
                assert self._reader is not None
                rest = self._reader.feed(self._buf)
                if rest is None:
                    self._buf = b""
                    return
                self._buf = rest
                self._mode = _HOLD  # the dispatcher answers the DATA, then resumes parsing
                if self._data_done and not self._data_done.done():
                    self._data_done.set_result(None)
                return
            if self._mode == _CHUNK:
                take = self._buf[: self._chunk_left]
                self._buf = self._buf[len(take):]
                self._chunk_left -= len(take)
                self._push(("chunk", take))
                if self._chunk_left == 0:
                    self._push(("chunkend", None))
                    self._mode = _LINES
                continue
            if self._mode == _HOLD:
                return
            # _LINES
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_AUTH_LINE:
                    self._buf = b""
                    if not self._discarding_line:
                        self._discarding_line = True
                        self._push(("toolong", None))
                return
            line, self._buf = self._buf[:nl], self._buf[nl + 1:]
            if self._discarding_line:
                self._discarding_line = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) + 2 > MAX_AUTH_LINE:
                self._push(("toolong", None))
                continue
            self._push(("line", line))
            verb = line[:9].split(b" ", 1)[0].upper()
            cmd = COMMANDS.get(verb.decode("ascii", "replace"))
            if cmd is not None and cmd.ends_group:
                self._mode = _HOLD  # RFC 2920 §3.1 / RFC 3207 §4.2: nothing after the group's end is read ahead
                return
            if verb == b"BDAT":
                size = _announced_chunk(line)
                if size is not None:
                    self._chunk_left = size
                    if self._chunk_left == 0:
                        self._push(("chunkend", None))
                    else:
                        self._mode = _CHUNK

    def _push(self, item: Any) -> None:
        self._items.append(item)
        if item[0] == "chunk":
            self._queued_bytes += len(item[1])
            if self._queued_bytes > MAX_BUFFERED and not self._paused and self.transport:
                self._paused = True
                self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        if self._wakeup and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _resume_parsing(self) -> None:
        if self._mode == _HOLD:
            self._mode = _LINES
        self._parse()

    async def _next_item(self) -> Any:
        """The next work item; None when the connection is closed, or after the client's EOF once every complete
        item it sent has been taken (what is left in the buffer then is an unterminated fragment)."""
        while not self._items:
            if self._closed:
                return None
            if self._mode == _HOLD:
                self._resume_parsing()
                if self._items:
                    break
            if self._eof:
                return None
            self._flush()
            self._wakeup = self.loop.create_future()
            await self._wakeup
            self._wakeup = None
        item = self._items.popleft()
        if item is not None and item[0] == "chunk":
            self._queued_bytes -= len(item[1])
            if self._paused and self._queued_bytes < MAX_BUFFERED // 2 and self.transport:
                self._paused = False
                self.transport.resume_reading()
        return item

    # ------------------------------------------------------------------ output

    def _write_reply(self, reply: Reply) -> None:
        self._out.append(reply.wire)
        self._last_activity = time.monotonic()

    def reply(self, reply: Reply) -> None:
        """Queues a reply; counts 4xx/5xx toward the error limit (chasquid and Postfix close after too many)."""
        self._write_reply(reply)
        # Our own trouble (4.3.x: storage, system) is not the client's error.
        if reply.code >= 500 or (reply.code >= 400 and not (reply.enhanced or "").startswith(("4.3.", "4.4."))):
            self._errors += 1

    def _flush(self) -> None:
        if self._out and self.transport and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    # ------------------------------------------------------------------ dispatcher

    async def _run(self) -> None:
        assert self.session
        try:
            refusal = await self.policy.check_connect(self.session)
            if refusal is not None:
                self.reply(refusal)
                self._close()
                return
            # RFC 5321 §4.3.1: the greeting; ESMTP announced so clients send EHLO.
            self._write_reply(Reply(220, None, f"{self.server.hostname} ESMTP courrier"))
            while not self._closed:
                item = await self._next_item()
                if item is None:
                    break
                await self._dispatch(item)
                if self._errors >= self.limits.max_errors and not self._closed:
                    self._write_reply(R.TOO_MANY_ERRORS)
                    self._close()
                if self._shutdown and not self._closed and self.env is None and self._mode != _DATA:
                    self._write_reply(R.SHUTTING_DOWN)
                    self._close()
        except Disconnect:  # the policy asked for the connection to be dropped with no reply
            log.event("smtp.dropped", sid=self.session.id, ip=self.session.peer_ip)
            self._close()
        except Exception as e:  # a bug must cost one connection, never the server
            log.event("smtp.internal_error", level="error", sid=self.session.id, error=repr(e))
            if not self._closed:
                self._write_reply(R.LOCAL_ERROR.with_text("Internal error, closing connection"))
                self._close()
        finally:
            self._discard_bdat()
            self._close()

    async def _dispatch(self, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "toolong":
            self.reply(R.LINE_TOO_LONG)
            return
        if kind in ("chunk", "chunkend"):
            return  # stray chunk bytes of a BDAT already answered: discarded
        line: bytes = payload
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.reply(R.SYNTAX_ERROR.with_text("Command line is not valid UTF-8"))
            return
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        cmd = COMMANDS.get(verb)
        if cmd is None:
            if verb in HTTP_VERBS:
                self.reply(R.HTTP_ON_SMTP)
                self._close()
                return
            self.reply(R.SYNTAX_ERROR)
            self._count_junk()
            return
        await self._command(cmd, arg, line)
        if cmd.ends_group:
            self._flush()  # RFC 2920 §3.1: the client waits for this reply before it sends anything more

    async def _command(self, cmd: Command[Phase], arg: str, line: bytes) -> None:
        """The table's rules for ``cmd``, checked once and in this order (junk, TLS, argument, phase), then its
        handler."""
        verb = cmd.name
        if len(line) + 2 > MAX_COMMAND_LINE and verb != "AUTH":
            await self._refuse(R.LINE_TOO_LONG, verb, line)
            return
        if cmd.has("junk") and not self._count_junk():
            return
        assert self.session
        if not cmd.before_tls and self.session.tls is None and self.policy.require_tls(self.session):
            await self._refuse(R.MUST_STARTTLS, verb, line)
            return
        if (cmd.needs_arg and not arg) or (cmd.no_arg and arg):
            self.reply(R.PARAM_SYNTAX)
            return
        phase = self.phase()
        if not cmd.allowed(phase):  # the one place the order of commands is enforced (RFC 5321 §4.1.4)
            await self._refuse(cmd.refusal(phase, R.BAD_SEQUENCE), verb, line)
            return
        await getattr(self, cmd.handler)(arg)

    def phase(self) -> Phase:
        """Where the session stands, derived from the session and the envelope (never stored beside them)."""
        assert self.session
        if self.env is not None:
            if self._bdat_spool is not None:
                return Phase.BDAT
            return Phase.RCPT if self.env.rcpts else Phase.MAIL
        if self.session.helo is None:
            return Phase.CONNECTED
        return Phase.EHLO if self.session.esmtp else Phase.HELO

    async def _refuse(self, reply: Reply, verb: str, line: bytes) -> None:
        """Answers a command refused before its handler; a refused BDAT's chunk is consumed so that its bytes are
        never read as commands (RFC 3030 §3)."""
        self.reply(reply)
        if verb == "BDAT" and _announced_chunk(line) is not None:
            await self._skip_chunk()

    def _count_junk(self) -> bool:
        """Counts one command that moves no mail; past ``max_junk_commands`` since the last accepted message:
        421 4.7.0 and close (False). Each such command resets the idle timer, so this budget is what keeps a
        client from holding a connection slot forever with NOOP, RSET, EHLO or MAIL/RSET cycles."""
        self._junk += 1
        if self._junk <= self.limits.max_junk_commands:
            return True
        if not self._closed:
            assert self.session
            log.event("smtp.junk_limit", level="warn", sid=self.session.id, ip=self.session.peer_ip, count=self._junk)
            self._write_reply(R.TOO_MANY_IDLE_COMMANDS)
            self._close()
        return False

    # ------------------------------------------------------------------ verbs: session

    def _ehlo_keywords(self) -> list[str]:
        """RFC 5321 §4.1.1.1 EHLO response lines after the greeting line, each extension with its RFC."""
        assert self.session
        kw = [
            "PIPELINING",  # RFC 2920
            f"SIZE {self.limits.max_message_size}",  # RFC 1870
            "8BITMIME",  # RFC 6152
            "SMTPUTF8",  # RFC 6531
            "ENHANCEDSTATUSCODES",  # RFC 2034
            "CHUNKING",  # RFC 3030
            "DSN",  # RFC 3461
        ]
        if self.server.tls_context is not None and self.session.tls is None:
            kw.append("STARTTLS")  # RFC 3207
        mechs = self.policy.auth_mechanisms(self.session)
        if mechs and not self.session.user:
            kw.append("AUTH " + " ".join(mechs))  # RFC 4954
        kw.append("HELP")
        return kw

    async def smtp_ehlo(self, arg: str) -> None:
        assert self.session
        self._reset_transaction()
        self.session.helo, self.session.esmtp = arg.split()[0], True
        lines = [f"{self.server.hostname} Hello {arg.split()[0]} [{self.session.peer_ip}]"] + self._ehlo_keywords()
        self._write_reply(Reply(250, None, "\n".join(lines)))

    async def smtp_helo(self, arg: str) -> None:
        assert self.session
        self._reset_transaction()
        self.session.helo, self.session.esmtp = arg.split()[0], False
        self._write_reply(Reply(250, None, f"{self.server.hostname} Hello {arg.split()[0]} [{self.session.peer_ip}]"))

    async def smtp_starttls(self, arg: str) -> None:
        """RFC 3207: 220, then the handshake; everything pipelined after STARTTLS is discarded (§4.2)."""
        assert self.session and self.transport
        if self.session.tls is not None:
            self.reply(R.TLS_ALREADY)
            return
        if self.server.tls_context is None:
            self.reply(R.TLS_UNAVAILABLE)
            return
        self._write_reply(R.READY_TLS)
        self._flush()
        self._buf = b""  # RFC 3207 §4.2: discard any plaintext the client sent ahead (CVE-2011-0411)
        self._items.clear()
        try:
            new_transport = await self.loop.start_tls(
                self.transport, self, self.server.tls_context, server_side=True, ssl_handshake_timeout=30)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as e:
            log.event("smtp.tls_failed", level="warn", sid=self.session.id, ip=self.session.peer_ip, error=str(e))
            self._closed = True
            self.transport.abort()
            return
        if new_transport is None:
            self._close()
            return
        self.transport = new_transport  # type: ignore[assignment]
        # Bytes buffered now came over TLS (a client may send EHLO as soon as its side of the handshake ends,
        # before this coroutine resumes): keep them. The plaintext ones were dropped above. _HOLD resumes parsing.
        self._mode = _HOLD
        # RFC 3207 §4.2: the server forgets everything it learned before the handshake.
        self.session.helo, self.session.esmtp, self.session.user = None, False, None
        self._reset_transaction()
        self._update_tls_info()
        log.event("smtp.tls", sid=self.session.id, version=self.session.tls.version if self.session.tls else None,
                  cipher=self.session.tls.cipher if self.session.tls else None)

    async def smtp_auth(self, arg: str) -> None:
        """RFC 4954 §4: AUTH mechanism [initial-response], PLAIN (RFC 4616) and LOGIN, decoded by courrier.auth.sasl.

        The shared limiter (courrier.auth) is asked first and holds a slot while the role's policy checks the
        credentials: a refused login gets 454 4.7.0 (RFC 4954 §4 "temporary authentication failure") without a
        check; undecodable SASL counts as a failure (capture mode's accept-any included)."""
        assert self.session
        if self.session.user:
            self.reply(R.ALREADY_AUTHENTICATED)
            return
        parts = arg.split()
        mech = parts[0].upper()
        initial = parts[1] if len(parts) > 1 else None
        offered = self.policy.auth_mechanisms(self.session)
        if mech not in ("PLAIN", "LOGIN"):
            self.reply(R.AUTH_MECH_UNSUPPORTED)
            return
        if not offered:
            if self.session.tls is None and self.policy.auth_needs_tls(self.session):
                self.reply(R.ENCRYPTION_REQUIRED)  # RFC 4954 §6: 538 5.7.11
            else:
                self.reply(R.NOT_IMPLEMENTED.with_text("AUTH not available"))
            return
        if mech not in offered:
            self.reply(R.AUTH_MECH_UNSUPPORTED)
            return
        gate, ip = self.server.auth_gate, self.session.peer_ip
        if gate.refused(ip, "smtp"):
            self.reply(R.AUTH_THROTTLED)
            return
        early = await self.policy.check_auth(self.session, mech)
        if early is not None:
            self.reply(early)
            return
        try:
            creds = await sasl.exchange(mech, initial, self._auth_challenge)
        except sasl.Cancelled:
            self.reply(R.AUTH_CANCELLED)
            return
        except sasl.AuthzDenied as e:
            gate.malformed(ip, "smtp", str(e))
            self.reply(R.AUTH_FAILED.with_text("Authorization identity differs from the authenticated user"))
            return
        except sasl.Malformed as e:
            gate.malformed(ip, "smtp", str(e))
            self.reply(R.PARAM_SYNTAX.with_text(f"Invalid AUTH data: {e}"))
            return
        username = creds.user
        try:
            async with gate.aslot(ip, username, "smtp") as attempt:
                result = await self.policy.authenticate(self.session, username, creds.password)
                attempt.ok = result.code == 235
        except Limited:
            result = R.AUTH_THROTTLED  # RFC 4954 §4: 454 4.7.0; the password was not checked
        if result.code == 235:
            self.session.user = username
            self.session.auth_mechanism = mech
            log.event("smtp.auth", sid=self.session.id, ip=ip, mechanism=mech, user=username)
        else:
            log.event("smtp.auth_failed", level="warn", sid=self.session.id, ip=ip,
                      mechanism=mech, user=username, code=result.code)
        self.reply(result)

    async def _auth_challenge(self, challenge: str) -> str | None:
        """Sends ``334 challenge`` and reads one response line (None: the connection ended or the line was too
        long); ``*`` (cancel, RFC 4954 §4) is the SASL decoder's to see."""
        self._write_reply(Reply(334, None, challenge))
        item = await self._next_item()
        if item is None or item[0] != "line":
            return None
        return item[1].decode("ascii", "replace")

    async def smtp_rset(self, arg: str) -> None:
        self._reset_transaction()
        self.reply(R.RESET)

    async def smtp_noop(self, arg: str) -> None:
        self.reply(R.NOOP)

    async def smtp_vrfy(self, arg: str) -> None:
        self.reply(R.VRFY_CANNOT)  # RFC 5321 §3.5.3: 252, never disclose accounts

    async def smtp_expn(self, arg: str) -> None:
        self.reply(R.NOT_IMPLEMENTED)

    async def smtp_help(self, arg: str) -> None:
        self.reply(R.HELP)

    async def smtp_quit(self, arg: str) -> None:
        self._write_reply(R.BYE)
        self._close()

    # ------------------------------------------------------------------ verbs: transaction

    def _reset_transaction(self) -> None:
        self.env = None
        self._discard_bdat()

    def _discard_bdat(self) -> None:
        if self._bdat_spool is not None:
            self._bdat_spool.close()
        self._bdat_spool, self._bdat_size, self._bdat_failed = None, 0, None

    async def smtp_mail(self, arg: str) -> None:
        """RFC 5321 §4.1.1.2 with SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID (RFC 3461)."""
        assert self.session
        if self.policy.require_auth(self.session) and not self.session.user:
            self.reply(R.AUTH_REQUIRED)
            return
        if self.policy.paused():
            self.reply(R.NOT_ACCEPTING)
            return
        try:
            path, params_raw = split_path_and_params(arg, "FROM")
            params = parse_params(params_raw)
        except AddressError as e:
            self.reply(R.PARAM_SYNTAX.with_text(f"Syntax: MAIL FROM:<address> [params] ({e})"))
            return
        if params and not self.session.esmtp:
            self.reply(R.PARAM_NOT_IMPLEMENTED.with_text("Parameters require EHLO"))
            return
        env = Envelope()
        for key, value in params.items():
            if key == "SIZE":
                if value is None or not value.isdigit():
                    self.reply(R.PARAM_SYNTAX.with_text("SIZE needs a number"))
                    return
                env.size = int(value)
                if env.size > self.limits.max_message_size:  # RFC 1870 §6.1
                    self.reply(R.MESSAGE_TOO_BIG)
                    return
            elif key == "BODY":
                if (value or "").upper() not in ("7BIT", "8BITMIME"):
                    self.reply(R.PARAM_NOT_IMPLEMENTED.with_text(f"BODY={value} not supported"))
                    return
                env.body = (value or "").upper()
            elif key == "SMTPUTF8" and value is None:
                env.smtputf8 = True
            elif key == "RET":
                if (value or "").upper() not in ("FULL", "HDRS"):
                    self.reply(R.PARAM_SYNTAX.with_text("RET must be FULL or HDRS"))
                    return
                env.ret = (value or "").upper()
            elif key == "ENVID" and value:
                try:
                    env.envid = xtext_decode(value)
                except AddressError:
                    self.reply(R.PARAM_SYNTAX.with_text("Bad ENVID xtext"))
                    return
            elif key == "AUTH":  # RFC 4954 §5: accepted, not trusted
                pass
            else:
                self.reply(R.PARAM_NOT_IMPLEMENTED.with_text(f"Parameter {key} not supported"))
                return
        try:
            env.mail_from = parse_path(path, allow_null=True, utf8=env.smtputf8)
        except AddressError as e:
            if not path.isascii() and not env.smtputf8:
                self.reply(R.UTF8_REQUIRED)
            else:
                self.reply(R.BAD_SENDER_SYNTAX.with_text(f"Bad sender address: {e}"))
            return
        result = await self.policy.check_mail(self.session, env)
        if result.ok:
            self.env = env
        self.reply(result)

    async def smtp_rcpt(self, arg: str) -> None:
        """RFC 5321 §4.1.1.3 with NOTIFY/ORCPT (RFC 3461 §4)."""
        assert self.session and self.env is not None  # the phase (MAIL or RCPT) was checked at dispatch
        try:
            path, params_raw = split_path_and_params(arg, "TO")
            params = parse_params(params_raw)
        except AddressError as e:
            self.reply(R.PARAM_SYNTAX.with_text(f"Syntax: RCPT TO:<address> [params] ({e})"))
            return
        if len(self.env.rcpts) >= self.limits.max_recipients:
            self.reply(R.TOO_MANY_RECIPIENTS)  # RFC 5321 §4.5.3.1.10
            return
        rcpt_notify: tuple[str, ...] = ()
        orcpt = None
        for key, value in params.items():
            if key == "NOTIFY":
                items = tuple((value or "").upper().split(","))
                if not items or any(i not in ("NEVER", "SUCCESS", "FAILURE", "DELAY") for i in items) or (
                        "NEVER" in items and len(items) > 1):
                    self.reply(R.PARAM_SYNTAX.with_text("Bad NOTIFY value"))
                    return
                rcpt_notify = items
            elif key == "ORCPT":
                if not value or ";" not in value:
                    self.reply(R.PARAM_SYNTAX.with_text("Bad ORCPT value"))
                    return
                try:
                    kind, _, addr = value.partition(";")
                    orcpt = f"{kind};{xtext_decode(addr)}"
                except AddressError:
                    self.reply(R.PARAM_SYNTAX.with_text("Bad ORCPT xtext"))
                    return
            else:
                self.reply(R.PARAM_NOT_IMPLEMENTED.with_text(f"Parameter {key} not supported"))
                return
        try:
            address = parse_path(path, allow_null=False, utf8=self.env.smtputf8)
        except AddressError as e:
            if path.lower() == "<postmaster>":
                # RFC 5321 §4.1.1.3, §4.5.1: <Postmaster> without a domain (any case) is always accepted; it
                # stands for postmaster@ the primary local domain, whatever our hostname is
                address = Address("postmaster", self.server.postmaster_domain)
            elif not path.isascii() and not self.env.smtputf8:
                self.reply(R.UTF8_REQUIRED)
                return
            else:
                self.reply(R.BAD_RECIPIENT_SYNTAX.with_text(f"Bad recipient address: {e}"))
                return
        rcpt = Recipient(address=address, notify=rcpt_notify, orcpt=orcpt)
        result = await self.policy.check_rcpt(self.session, self.env, rcpt)
        if result is None:
            # The policy asked for silence (capture mode's timeout@): answer nothing; the idle timer closes.
            return
        if result.ok:
            self.env.rcpts.append(rcpt)
        self.reply(result)

    async def smtp_data(self, arg: str) -> None:
        """RFC 5321 §4.1.1.4: 354, then the payload straight to the spool through DataReader."""
        assert self.session and self.env  # the phase (RCPT) was checked at dispatch
        spool = new_spool(self.server.spool_dir)
        self._reader = DataReader(spool, self.limits.max_message_size)
        self._data_done = self.loop.create_future()
        self._write_reply(R.START_INPUT)
        self._flush()
        self._mode = _DATA
        self._parse()  # bytes the client sent early
        try:
            if not self._reader.done and not self._eof:
                await self._data_done
        finally:
            self._data_done = None
        reader, self._reader = self._reader, None
        if self._closed or not reader.done:
            # connection lost, or EOF before <CRLF>.<CRLF>: an incomplete message is never delivered
            log.event("smtp.data_incomplete", level="warn", sid=self.session.id, ip=self.session.peer_ip,
                      size=reader.size)
            spool.close()
            self._close()
            return
        self._in_transaction_work = True
        try:
            refusal = None
            if reader.too_big:
                refusal = R.MESSAGE_TOO_BIG
            elif reader.line_too_long:
                refusal = R.LINE_TOO_LONG.with_text("Line too long (RFC 5321 section 4.5.3.1.6: 1000 octets)")
            elif reader.error is not None:
                refusal = R.INSUFFICIENT_STORAGE
            if refusal is None:
                result = await self._finish_message(ReceivedMessage(spool, reader.size))
            else:
                result = refusal
                log.event("smtp.message", level="warn", qid=self.env.queue_id if self.env else None,
                          sid=self.session.id, listener=self.server.listener, ip=self.session.peer_ip, size=reader.size, result=result.code,
                          text=result.text)
        finally:
            self._in_transaction_work = False
            spool.close()
        self.reply(result)
        self._reset_transaction()

    async def _skip_chunk(self) -> None:
        while True:
            item = await self._next_item()
            if item is None or item[0] == "chunkend":
                return
            if item[0] != "chunk":
                self._items.appendleft(item)
                return

    async def smtp_bdat(self, arg: str) -> None:
        """RFC 3030 §2: BDAT size [LAST]; chunk bytes are always consumed, even when the command is refused."""
        assert self.session
        parts = arg.split()
        if len(parts) not in (1, 2) or not parts[0].isdigit() or len(parts[0]) > 12 or (
                len(parts) == 2 and parts[1].upper() != "LAST"):
            self.reply(R.PARAM_SYNTAX.with_text("Syntax: BDAT size [LAST]"))
            self._reset_transaction()
            return
        size, last = int(parts[0]), len(parts) == 2
        if size == 0 and not last and not self._count_junk():  # an empty chunk moves no mail either
            return
        assert self.env  # the phase (RCPT or BDAT) was checked at dispatch
        if self._bdat_spool is None:
            self._bdat_spool = new_spool(self.server.spool_dir)
            self._bdat_size = 0
        received = 0
        while received < size:
            item = await self._next_item()
            if item is None:
                return
            if item[0] == "chunkend":
                break
            if item[0] != "chunk":
                self._items.appendleft(item)
                break
            data = item[1]
            received += len(data)
            self._bdat_size += len(data)
            if self._bdat_size > self.limits.max_message_size:
                self._bdat_failed = R.MESSAGE_TOO_BIG
            elif self._bdat_failed is None:
                try:
                    self._bdat_spool.write(data)
                except OSError:
                    self._bdat_failed = R.INSUFFICIENT_STORAGE
        if size == 0 or received == size:
            # consume the chunkend marker when it is next
            if self._items and self._items[0] is not None and self._items[0][0] == "chunkend":
                self._items.popleft()
        if self._closed:
            return
        if not last:
            if self._bdat_failed:
                self.reply(self._bdat_failed)
                self._reset_transaction()
                return
            self.reply(R.OK.with_text(f"{size} octets received"))
            return
        self._in_transaction_work = True
        try:
            if self._bdat_failed:
                result = self._bdat_failed
            else:
                result = await self._finish_message(ReceivedMessage(self._bdat_spool, self._bdat_size))
        finally:
            self._in_transaction_work = False
        self.reply(result)
        self._reset_transaction()

    async def _finish_message(self, msg: ReceivedMessage) -> Reply:
        assert self.session and self.env
        if self.env.size is not None and msg.size > self.limits.max_message_size:
            return R.MESSAGE_TOO_BIG
        try:
            result = await self.policy.deliver(self.session, self.env, msg)
        except MailError as e:
            result = e.reply
        except OSError as e:
            log.event("smtp.store_failed", level="error", qid=self.env.queue_id, error=str(e))
            result = R.storage_failure(e)
        if result.ok:
            self._junk = 0  # mail moved: the budget of idle commands starts again (as Postfix's does)
        level = "info" if result.ok else "warn"
        log.event("smtp.message", level=level, qid=self.env.queue_id, sid=self.session.id,
                  listener=self.server.listener, ip=self.session.peer_ip, sender=f"<{self.env.mail_from}>", rcpts=len(self.env.rcpts),
                  size=msg.size, result=result.code, text=result.text)
        return result
