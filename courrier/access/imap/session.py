"""One IMAP connection (RFC 3501 §3 state machine): reading commands, dispatching through the command table,
and keeping the selected mailbox's view in step with the store (RFC 3501 §5.2, §7.4.1).

The view is the list of UIDs the client knows, in message-sequence order, with the flags it was last told. After
every command (and while IDLE) the session compares it with the index and sends EXISTS, EXPUNGE and FETCH FLAGS for
what changed — EXPUNGE never during FETCH, STORE or SEARCH (RFC 3501 §7.4.1), when the vanished messages stay in
the view until a later command may report them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import re
import sqlite3
import ssl

from courrier import log
from courrier.access.auth import Authenticator, Mailroot
from courrier.access.imap import condstore, extensions
from courrier.access.imap import parser as P
from courrier.access.imap import response as W
from courrier.access.imap.parser import LiteralTooBig, ParseError
from courrier.access.imap.state import (
    AUTH,
    LOGOUT,
    NOT_AUTH,
    SELECTED,
    LineTooLong,
    Selected,
    TaggedResult,
)
from courrier.config import LimitsConfig
from courrier.mailbox import flags as F
from courrier.mailbox.api import Folder, FolderIndex, MailStore, Msg, Snapshot
from courrier.quota import Quotas

MAX_COMMAND = 1 << 20  # octets of command text (not literals): long UID sets from real clients fit
MAX_LITERAL = 1 << 16  # literals other than APPEND's message
MAX_LITERALS = 1000  # literals in one command (each costs a round trip or a buffer, however small)
# Before LOGIN nothing large is read (issue 11 item 8): a command line, each literal and all literals of a command
# fit in PREAUTH_BYTES — room for LOGIN/AUTHENTICATE with long names and passwords, never for a message. The stream
# reader's own buffer is bounded to the same size, so an unauthenticated client holds a few KiB of server memory.
PREAUTH_BYTES = 8 << 10
PREAUTH_LITERALS = 8
# RFC 7888 §4 (LITERAL-'s bound): before login a non-synchronizing literal may not exceed 4096 octets; a larger one is
# refused like any literal over a bound. After login LITERAL+ takes what the synchronizing form would.
PREAUTH_NONSYNC = 4096
TOKENIZE_ON_LOOP = 64 << 10  # longer command texts are tokenized in the store's threads
MAX_ERRORS = 10
AUTHENTICATED_TIMEOUT = 1800.0  # RFC 3501 §5.4: at least 30 minutes once logged in
# RFC 3501 §9 tag = 1*<any ASTRING-CHAR except "+">: printable ASCII but ( ) { % * " \\ + (and "]" is allowed)
_TAG = re.compile(rb"^([\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+) ")
MAX_LITERALS_TOTAL = 1 << 20  # octets of all literals in one command other than APPEND (a LOGIN, a SEARCH...)
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded"  # $Forwarded: the Maildir P letter


def keywords_of(snap: Snapshot) -> frozenset[str]:
    out: set[str] = set()
    for m in snap.messages:
        for f in m.flags:
            if not f.startswith("\\"):
                out.add(f)
    return frozenset(out)


def _view_of(name: str, path: Folder, readonly: bool, snap: Snapshot) -> Selected:
    """A selected mailbox's view of ``snap`` (O(messages): built in the store's threads)."""
    sel = Selected(name, path, readonly, snap.uidvalidity)
    for m in snap.messages:
        sel.uids.append(m.uid)
        sel.msgs[m.uid] = m
        sel.flags[m.uid] = m.flags
    sel.snap = snap
    sel.keywords = keywords_of(snap)
    return sel


class IMAPServer:
    """The IMAP service behind the ``imap`` and ``imaps`` listeners."""

    def __init__(self, *, store: MailStore, auth: Authenticator, tls_context: ssl.SSLContext | None,
                 limits: LimitsConfig, hostname: str, quotas: Quotas | None = None) -> None:
        self.store = store
        self.quotas = quotas  # RFC 9208 (cmd_quota.py); None: no QUOTA capability
        self.auth = auth
        self.tls_context = tls_context
        self.limits = limits
        self.hostname = hostname

    def handler(self, implicit_tls: bool):  # noqa: ANN201 - a Handler for StreamListener
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await Session(self, reader, writer, implicit_tls).run()

        return handle


class Session:
    # no per-instance __dict__: every idle connection holds one Session (issue 17: ≤ 5 KiB per idle connection)
    __slots__ = ("server", "store", "reader", "writer", "tls", "peer_ip", "state", "root", "selected", "errors",
                 "_first", "mid_command", "_reader_limit", "rfc7162", "enabled")

    def __init__(self, server: IMAPServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 tls: bool) -> None:
        self.server = server
        self.store = server.store
        self.reader, self.writer = reader, writer
        self.tls = tls
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer_ip = str(peer[0])
        self.state = NOT_AUTH
        self.root: Mailroot | None = None
        self.selected: Selected | None = None
        self.errors = 0
        self._first = b""
        self.mid_command = False  # a command's first line has been read and its answer is not complete
        self._reader_limit: int = getattr(reader, "_limit", MAX_COMMAND)  # the listener's line limit
        self.rfc7162: set[str] = set()  # CONDSTORE / QRESYNC once enabled (condstore.py)
        self.enabled: set[str] = set()  # UTF8=ACCEPT, IMAP4rev2 once enabled (extensions.py)

    # ------------------------------------------------------------------ output

    def send(self, data: bytes | str) -> None:
        """One response line (CRLF added)."""
        self.write((data.encode() if isinstance(data, str) else data) + b"\r\n")

    def write(self, data: bytes) -> None:
        """Raw response octets. A client that has gone (reset, closed) raises ConnectionResetError here, which
        ends the session quietly: writing to a closed transport would raise RuntimeError (uvloop) deep in a handler."""
        if self.writer.is_closing():
            raise ConnectionResetError("the client has closed the connection")
        self.writer.write(data)

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE",
                "UNSELECT", "CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE", "ESEARCH", "LIST-STATUS",
                f"APPENDLIMIT={self.server.limits.max_message_size}", *condstore.CAPABILITIES]
        caps += extensions.capabilities(self.state != NOT_AUTH)  # issue 16's later extensions (extensions.py)
        if self.root is not None and not self.root.capture and self.server.quotas is not None:
            caps += ["QUOTA", "QUOTA=RES-STORAGE"]  # RFC 9208 §3.1: once logged in (the account's limits)
        if self.state == NOT_AUTH:
            if not self.tls and self.server.tls_context is not None:
                caps.append("STARTTLS")  # RFC 3501 §6.2.1
            if self.server.auth.plaintext_allowed(self.tls, self.peer_ip):
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")  # RFC 3501 §6.2.3
        return caps

    # ------------------------------------------------------------------ input

    @property
    def timeout(self) -> float:
        t = self.server.limits.idle_timeout
        return t if self.state == NOT_AUTH else max(t, AUTHENTICATED_TIMEOUT)

    async def readline(self) -> bytes:
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the read in a second Task, which an idle
            # connection would hold for as long as it waits (issue 17: ≤ 5 KiB per idle connection)
            async with asyncio.timeout(self.timeout):
                line = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise LineTooLong from None
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    def _bound_reader(self) -> None:
        """Sizes the stream reader's buffer for the state: PREAUTH_BYTES before login, the listener's after.

        asyncio's StreamReader has no public setter; its ``_limit`` bounds both a line (readuntil) and how much it
        buffers before pausing the socket (2 × limit), which is exactly what must stay small before login."""
        limit = PREAUTH_BYTES if self.state == NOT_AUTH else self._reader_limit
        if getattr(self.reader, "_limit", limit) != limit:
            self.reader._limit = limit  # type: ignore[attr-defined]

    def literal_bounds(self, first_line: bytes) -> tuple[int, int, int, int]:
        """(line text, one literal, all literals, literal count) a command may use in the current state."""
        if self.state == NOT_AUTH:
            return PREAUTH_BYTES, PREAUTH_BYTES, PREAUTH_BYTES, PREAUTH_LITERALS
        words = first_line.split(b" ", 3)
        if len(words) > 1 and words[1].upper() == b"APPEND":  # RFC 3501 §6.3.11: the message is the literal
            size = self.server.limits.max_message_size
            return MAX_COMMAND, size, size + MAX_LITERAL, MAX_LITERALS
        return MAX_COMMAND, MAX_LITERAL, MAX_LITERALS_TOTAL, MAX_LITERALS

    async def read_command(self) -> tuple[bytes, list[bytes]]:
        """Text with NUL for each literal, and the literals (RFC 3501 §4.3, RFC 7888 LITERAL+).

        Every read is bounded before it happens (issue 11 item 8): the command text, each literal, all literals
        together and their number, by the state (``literal_bounds``). A synchronizing literal over a bound is
        refused before the client sends it; a non-synchronizing one is already on its way, so the connection ends."""
        self._bound_reader()
        parts: list[bytes] = []
        literals: list[bytes] = []
        size = 0
        total = 0  # literal octets so far: many small literals are bounded too, not only each one
        bounds = (MAX_COMMAND, 0, 0, 0)
        while True:
            line = await self.readline()
            if not parts:
                self._first = line
                self.mid_command = True
                bounds = self.literal_bounds(line)
            max_text, max_one, max_total, max_count = bounds
            size += len(line)
            if size > max_text:
                raise LineTooLong
            m = P.LITERAL.search(line)
            if not m:
                parts.append(line)
                return b"".join(parts), literals
            n, sync = int(m.group(1)), not m.group(2)
            too_big = n > max_one or (not sync and self.state == NOT_AUTH and n > PREAUTH_NONSYNC)
            if too_big or total + n > max_total or len(literals) >= max_count:
                raise LiteralTooBig(n, sync)
            total += n
            head = line[:m.start()]
            # RFC 3516 §4.4 literal8: "~" standing alone before the "{" (an atom may end in "~" too)
            binary = head[-2:] in (b" ~", b"(~") and self.state != NOT_AUTH
            parts.append((head[:-1] if binary else head) + b"\x00")
            if sync:
                self.send(b"+ Ready for literal data")
                await self.writer.drain()
            async with asyncio.timeout(self.timeout):
                data = await self.reader.readexactly(n)
            literals.append(P.Literal8(data) if binary else data)

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        # the table imports the handlers, which import this module
        from courrier.access.imap.commands import COMMANDS

        log.event("imap.connect", ip=self.peer_ip, tls=self.tls)
        reason: str | None = None
        self.send(f"* OK [CAPABILITY {' '.join(self.capabilities())}] {self.server.hostname} courrier IMAP4rev1 ready")
        try:
            while self.state != LOGOUT:
                self.mid_command = False
                await self.writer.drain()
                tag = "*"
                try:
                    text, literals = await self.read_command()
                except LiteralTooBig as e:
                    m = _TAG.match(self._last_first_line())
                    what = "before authentication" if self.state == NOT_AUTH else "for this command"
                    if e.sync and m:  # RFC 7889: refused before the client sends it, so the session goes on
                        self.send(m.group(1) + f" NO [TOOBIG] literal too large {what}".encode())
                        self.errors += 1
                        continue
                    log.event("imap.literal_refused", ip=self.peer_ip, user=self.user, size=e.size)
                    self.send(f"* BYE literal too large {what}")  # RFC 7888 §4: non-synchronizing, cannot skip it
                    break
                except LineTooLong:
                    self.send("* BYE command line too long")
                    break
                except TimeoutError:
                    self.send("* BYE autologout; idle for too long")  # RFC 3501 §5.4
                    break
                m = _TAG.match(text + b" ")
                if not m:
                    self.bad("*", "missing or invalid tag")
                    continue
                tag = m.group(1).decode()
                try:
                    if b"\x00" in text and not literals:
                        raise ParseError("NUL in command")
                    if len(text) > TOKENIZE_ON_LOOP:  # 100,000 tokens take a tenth of a second: not on the loop
                        toks = await self.store.run(P.tokenize, text[m.end():], literals)
                    else:
                        toks = P.tokenize(text[m.end():], literals)
                    if not toks or not isinstance(toks[0], P.Atom):
                        raise ParseError("missing command")
                    name = toks[0].upper()
                    args = toks[1:]
                    uid = False
                    if name == "UID":  # RFC 3501 §6.4.8
                        if not args or not isinstance(args[0], P.Atom):
                            raise ParseError("UID needs a command")
                        name, args, uid = args[0].upper(), args[1:], True
                    cmd = COMMANDS.get(name)
                    if cmd is None or (uid and not cmd.has("uid")):
                        raise ParseError(f"unknown command {name[:20]}")
                    if not cmd.allowed(self.state):  # the row's states, checked here only (RFC 3501 §3)
                        raise TaggedResult("BAD", f"{name} not allowed now")
                    expunge_ok = uid or not cmd.has("no_expunge")
                    if self.selected is not None and cmd.phases == {SELECTED} and not cmd.has("no_refresh"):
                        # the view is brought up to date first, so FETCH/STORE/SEARCH work on current flags and
                        # messages; held-back EXPUNGEs go out now unless the command forbids them (§7.4.1)
                        await self.updates(allow_expunge=expunge_ok)
                    text_ok = await cmd.handler(self, tag, args, uid)
                    if self.state == SELECTED:
                        await self.updates(allow_expunge=expunge_ok)
                    if text_ok is not None:
                        self.send(f"{tag} OK {text_ok}")
                except ParseError as e:
                    self.bad(tag, str(e))
                except TaggedResult as e:
                    if e.status == "BAD":
                        self.bad(tag, e.text)
                    else:
                        self.send(f"{tag} {e.status} {e.text}")
                except LineTooLong:  # a continuation line (AUTHENTICATE) beyond the limit
                    self.send("* BYE line too long")
                    break
                except TimeoutError:  # a literal or a continuation line that never came
                    self.send("* BYE autologout; idle for too long")
                    break
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    raise  # the connection is gone: said once, below
                except (OSError, sqlite3.OperationalError) as e:
                    # the disk or the database fails: a temporary condition of a subsystem (RFC 5530 §3)
                    log.event("imap.storage_error", level="error", user=self.user, error=str(e)[:200])
                    self.send(f"{tag} NO [UNAVAILABLE] mail storage unavailable, try again later")
                except Exception as e:  # noqa: BLE001 - a bug must cost one command, never the server or a hang
                    log.event("imap.bug", level="error", user=self.user, error=repr(e)[:300])
                    self.send(f"{tag} NO [SERVERBUG] internal error")
                    self.errors += 1
                if self.errors >= MAX_ERRORS:
                    self.send("* BYE too many errors")
                    break
            await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as e:
            # the client left mid-command or mid-literal: one info line (below), never a traceback (issue 11 item 13)
            mid = self.mid_command or (isinstance(e, asyncio.IncompleteReadError) and bool(e.partial))
            reason = "client closed the connection" + (" mid-command" if mid else "")
            if isinstance(e, ssl.SSLError):
                reason = f"TLS error: {e.reason or e}"
        except asyncio.CancelledError:
            with contextlib.suppress(ConnectionError):
                self.send("* BYE server shutting down")
            raise
        finally:
            self.deselect()
            log.event("imap.disconnect", ip=self.peer_ip, user=self.user, reason=reason)

    def _last_first_line(self) -> bytes:
        return self._first + b" "

    def bad(self, tag: str, reason: str) -> None:
        self.errors += 1
        self.send(f"{tag} BAD {reason}")

    @property
    def index(self) -> FolderIndex:
        """The mailbox index, opened by the store on first use — inside a command, so a database that cannot be
        opened costs that command (NO [UNAVAILABLE]), not the connection."""
        return self.store.index

    @property
    def user(self) -> str | None:
        return self.root.user if self.root else None

    # ------------------------------------------------------------------ selected mailbox view

    def deselect(self) -> None:
        if self.selected is not None:
            if self.selected.unsubscribe:
                self.selected.unsubscribe()
            self.selected = None
        if self.state == SELECTED:
            self.state = AUTH

    async def select(self, name: str, path: Folder, readonly: bool) -> Selected:
        self.deselect()
        snap = await self.store.run(self.index.sync, path)
        sel = await self.store.run(_view_of, name, path, readonly, snap)  # O(messages): off the loop
        # RFC 3501 §2.3.2 / §6.3.2: SELECT claims \Recent; EXAMINE shows it but may not take it from others
        sel.recent = await self.store.run(self.index.recent_uids if readonly else self.index.claim_recent, path)
        sel.unsubscribe = self.store.subscribe(path, sel.dirty.set)
        self.selected = sel
        self.state = SELECTED
        return sel

    async def updates(self, allow_expunge: bool) -> None:
        """Sends what changed in the selected mailbox since the client last heard (RFC 3501 §5.2, §7.3.1, §7.4.1)."""
        sel = self.selected
        if sel is None:
            return
        sel.dirty.clear()
        snap = await self.store.run(self.index.sync, sel.path)
        if snap is sel.snap:
            return
        if snap.uidvalidity != sel.uidvalidity:  # the mailbox was deleted and re-created behind us
            self.send("* BYE mailbox UIDVALIDITY changed")
            self.state = LOGOUT
            return
        # comparing views costs O(messages): done in the store's threads (the session waits, so nothing else
        # touches its view meanwhile), the lines sent from here
        lines, new, pending = await self.store.run(self._changes, sel, snap, allow_expunge)
        for line in lines:
            self.send(line)
        if new:
            for m in new:
                sel.uids.append(m.uid)
                sel.msgs[m.uid] = m
                sel.flags[m.uid] = m.flags
            fresh = await self.store.run(self.index.recent_uids if sel.readonly else self.index.claim_recent,
                                         sel.path)
            self.send(b"* %d EXISTS" % len(sel.uids))
            if "IMAP4rev2" not in self.enabled:  # RFC 9051 Appendix E: no \Recent, no RECENT response
                sel.recent |= fresh
                self.send(b"* %d RECENT" % self.recent_count(sel))
        sel.snap = None if pending else snap

    def _changes(self, sel: Selected, snap: Snapshot, allow_expunge: bool) -> tuple[list[bytes], list[Msg], bool]:
        """The view brought up to ``snap`` except for new messages: (lines to send, new messages, whether
        EXPUNGEs are held back). Blocking CPU work, run in the store's threads."""
        out: list[bytes] = []
        current = {m.uid: m for m in snap.messages}
        pending = False
        if any(u not in current for u in sel.uids):
            if allow_expunge:
                vanished = condstore.qresync(self)  # RFC 7162 §3.2.10: VANISHED instead of EXPUNGE once enabled
                gone = []
                for i in range(len(sel.uids) - 1, -1, -1):
                    u = sel.uids[i]
                    if u not in current:
                        if vanished:
                            gone.append(u)
                        else:
                            out.append(b"* %d EXPUNGE" % (i + 1))
                        del sel.uids[i]
                        sel.msgs.pop(u, None)
                        sel.flags.pop(u, None)
                        sel.recent.discard(u)
                if gone:
                    out.append(f"* VANISHED {condstore.uids_text(sorted(gone))}".encode())
            else:
                pending = True
        top = sel.uids[-1] if sel.uids else 0
        new = [m for m in snap.messages if m.uid > top]
        kw = keywords_of(snap)
        with_modseq = condstore.condstore(self)
        if not kw <= sel.keywords:  # RFC 3501 §7.2.6: a new keyword is announced in FLAGS before a FETCH uses it
            sel.keywords |= kw
            out += self.flags_lines(sel)
        for m in snap.messages:
            if m.uid <= top and m.uid in sel.flags:
                sel.msgs[m.uid] = m
                if sel.flags[m.uid] != m.flags:
                    sel.flags[m.uid] = m.flags
                    mod = b" MODSEQ (%d)" % m.modseq if with_modseq else b""  # RFC 7162 §3.1.4.1
                    out.append(b"* %d FETCH (UID %d FLAGS %s%s)" % (sel.seq_of(m.uid), m.uid,
                                                                    W.flags(sel.shown_flags(m.uid)), mod))
        return out, new, pending

    @staticmethod
    def recent_count(sel: Selected) -> int:
        """\\Recent messages in the client's view (a UID claimed just ahead of its EXISTS is counted later)."""
        return sum(1 for u in sel.uids if u in sel.recent)

    def send_flags(self, sel: Selected) -> None:
        """FLAGS and PERMANENTFLAGS (RFC 3501 §7.2.6, §7.1): the defined flags plus the keywords in use; ``\\*``
        says the client may create keywords (they are kept in the index)."""
        for line in self.flags_lines(sel):
            self.send(line)

    @staticmethod
    def flags_lines(sel: Selected) -> list[bytes]:
        defined = " ".join([SYSTEM_FLAGS, *sorted(sel.keywords - {F.FORWARDED})])
        permanent = "" if sel.readonly else defined + " \\*"
        return [f"* FLAGS ({defined})".encode(), f"* OK [PERMANENTFLAGS ({permanent})] flags the client can change".encode()]

    def resolve(self, sset: P.SeqSet, uid: bool) -> list[int]:
        """A sequence set → sorted message sequence numbers in the view (RFC 3501 §6.4.8 for UID sets)."""
        sel = self.selected
        assert sel is not None
        n = len(sel.uids)
        out: list[int] = []
        if not uid:
            for a, b in sset:
                if a is not None and b is not None and max(a, b) > n:
                    raise TaggedResult("BAD", "message number out of range")
            for lo, hi in P.merged(sset, n):  # disjoint and sorted: each number once, whatever the set repeats
                out.extend(range(max(lo, 1), min(hi, n) + 1))
            return out
        star = sel.uids[-1] if sel.uids else 0
        for lo, hi in P.merged(sset, star):
            i = bisect.bisect_left(sel.uids, lo)
            j = bisect.bisect_right(sel.uids, hi)
            out.extend(range(i + 1, j + 1))
        return out
        star = sel.uids[-1] if sel.uids else 0
        for a, b in sset:
            lo, hi = (star if a is None else a), (star if b is None else b)
            if lo > hi:
                lo, hi = hi, lo
            i = bisect.bisect_left(sel.uids, lo)
            j = bisect.bisect_right(sel.uids, hi)
            out.update(range(i + 1, j + 1))
        return sorted(out)
