"""Every IMAP command in every IMAP state and every POP3 command in every POP3 state gets the answer the RFCs say,
in-process over real loopback sockets. The dispatchers check the state once, from the table row
(courrier/access/*/commands.py); the expectations here are written from the RFCs, not read from the tables.

IMAP (RFC 3501 §3, §6): §6.1 commands are valid in any state, §6.2 only before authentication, §6.3 once
authenticated (in the selected state too), §6.4 only with a mailbox selected; a command in the wrong state gets a
tagged BAD. POP3 (RFC 1939 §3-§7, RFC 2449, RFC 2595, RFC 5034): each command names the one state it may be given
in; elsewhere -ERR.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import threading

import pytest

from courrier.access.auth import Authenticator
from courrier.access.imap.commands import COMMANDS as IMAP_COMMANDS
from courrier.access.imap.session import IMAPServer
from courrier.access.pop3.commands import COMMANDS as POP3_COMMANDS
from courrier.access.pop3.protocol import POP3Server
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import maildir
from courrier.mailbox.store import MaildirStore
from courrier.net.limits import ConnectionLimiter
from courrier.net.listener import StreamListener

USER, PASSWORD = "bob@example.test", "secret"
PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def ports(tmp_path_factory):
    """One IMAP and one POP3 listener over a store holding three messages, on a loop of their own in a thread (so
    each test's own loop runs only the client)."""
    tmp = tmp_path_factory.mktemp("tables")
    cfg = dataclasses.replace(Config(), data_dir=tmp, domains=("example.test",))
    accounts = Accounts(cfg.db_path)
    accounts.add(USER, PASSWORD)
    store = MaildirStore(tmp)
    box = maildir.ensure(store.account_root(USER))
    for i in range(3):
        maildir.write_new(box, [f"Subject: m{i}\n\nbody {i}\n".encode()])
    auth = Authenticator(cfg, accounts, store)
    loop = asyncio.new_event_loop()
    ready: dict[str, int] = {}
    started = threading.Event()

    async def serve() -> None:
        limiter = ConnectionLimiter(cfg.limits)
        imap = StreamListener("imap", IMAPServer(store=store, auth=auth, tls_context=None, limits=cfg.limits,
                                                 hostname="mx.test").handler(False), limiter)
        pop3 = StreamListener("pop3", POP3Server(store=store, auth=auth, tls_context=None,
                                                 idle_timeout=60).handler(False), limiter)
        for name, lst in (("imap", imap), ("pop3", pop3)):
            srv = await loop.create_server(lst.factory, "127.0.0.1", 0)
            ready[name] = srv.sockets[0].getsockname()[1]
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield ready
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    store.close()


class Conn:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        c = cls(r, w)
        await c.line()  # greeting
        return c

    async def line(self) -> str:
        ln = await asyncio.wait_for(self.r.readline(), 10)
        assert ln, "the server closed the connection"
        return ln.decode().rstrip("\r\n")

    async def close(self) -> None:
        """Half-closes and waits for the server to end the session, so that its maildrop lock (RFC 2449 §8.1.1) is
        released before the next test logs in."""
        if not self.w.is_closing():
            self.w.write_eof()
            while await asyncio.wait_for(self.r.read(65536), 10):
                pass
        self.w.close()

    async def tagged(self, data: str, tag: str) -> str:
        """Sends ``data``; the tagged reply line (or a continuation request, "+ ...")."""
        self.w.write(data.encode())
        while True:
            ln = await self.line()
            if ln.startswith((f"{tag} ", "+ ")):
                return ln


# ---------------------------------------------------------------------- IMAP

NOT_AUTH, AUTH, SELECTED = "not-authenticated", "authenticated", "selected"
IMAP_STATES = (NOT_AUTH, AUTH, SELECTED)
IMAP_SETUP = {NOT_AUTH: "", AUTH: f"l LOGIN {USER} {PASSWORD}\r\n",
              SELECTED: f"l LOGIN {USER} {PASSWORD}\r\ns SELECT INBOX\r\n"}
MSG = "Subject: t\r\n\r\nx\r\n"
IMAP_PROBE = {
    "CAPABILITY": "CAPABILITY", "NOOP": "NOOP", "LOGOUT": "LOGOUT", "ID": "ID NIL",
    "STARTTLS": "STARTTLS", "AUTHENTICATE": f"AUTHENTICATE PLAIN {PLAIN}", "LOGIN": f"LOGIN {USER} {PASSWORD}",
    "ENABLE": "ENABLE CONDSTORE", "NAMESPACE": "NAMESPACE", "SELECT": "SELECT INBOX", "EXAMINE": "EXAMINE INBOX",
    "CREATE": "CREATE Probe", "DELETE": "DELETE Nothing", "RENAME": "RENAME Nothing Else",
    "SUBSCRIBE": "SUBSCRIBE INBOX", "UNSUBSCRIBE": "UNSUBSCRIBE INBOX", "LIST": 'LIST "" *', "LSUB": 'LSUB "" *',
    "STATUS": "STATUS INBOX (MESSAGES)", "APPEND": f"APPEND INBOX {{{len(MSG)}+}}\r\n{MSG}", "IDLE": "IDLE",
    "CHECK": "CHECK", "CLOSE": "CLOSE", "UNSELECT": "UNSELECT", "EXPUNGE": "EXPUNGE", "SEARCH": "SEARCH ALL",
    "FETCH": "FETCH 1 FLAGS", "STORE": "STORE 1 +FLAGS (\\Flagged)", "COPY": "COPY 1 INBOX",
    "MOVE": "MOVE 1 Nowhere", "GETQUOTA": 'GETQUOTA ""', "GETQUOTAROOT": "GETQUOTAROOT INBOX",
    "SETQUOTA": 'SETQUOTA "" (STORAGE 10)', "SORT": "SORT (DATE) UTF-8 ALL", "THREAD": "THREAD REFERENCES UTF-8 ALL",
}
ANY_STATE = (True, True, True)  # §6.1
BEFORE_LOGIN = (True, False, False)  # §6.2
LOGGED_IN = (False, True, True)  # §6.3: "also valid in the selected state"
MAILBOX = (False, False, True)  # §6.4
IMAP_VALID = {
    "CAPABILITY": ANY_STATE, "NOOP": ANY_STATE, "LOGOUT": ANY_STATE,  # RFC 3501 §6.1
    "ID": ANY_STATE,  # RFC 2971 §3.1: any state
    "STARTTLS": BEFORE_LOGIN, "AUTHENTICATE": BEFORE_LOGIN, "LOGIN": BEFORE_LOGIN,  # RFC 3501 §6.2
    # RFC 5161 §3.1 allows ENABLE in the authenticated state; courrier (like Dovecot) also takes it when selected
    "ENABLE": LOGGED_IN,
    "NAMESPACE": LOGGED_IN,  # RFC 2342 §5
    "SELECT": LOGGED_IN, "EXAMINE": LOGGED_IN, "CREATE": LOGGED_IN, "DELETE": LOGGED_IN, "RENAME": LOGGED_IN,
    "SUBSCRIBE": LOGGED_IN, "UNSUBSCRIBE": LOGGED_IN, "LIST": LOGGED_IN, "LSUB": LOGGED_IN, "STATUS": LOGGED_IN,
    "APPEND": LOGGED_IN,  # RFC 3501 §6.3
    "IDLE": LOGGED_IN,  # RFC 2177 §3
    "CHECK": MAILBOX, "CLOSE": MAILBOX, "EXPUNGE": MAILBOX, "SEARCH": MAILBOX, "FETCH": MAILBOX,
    "STORE": MAILBOX, "COPY": MAILBOX,  # RFC 3501 §6.4
    "UNSELECT": MAILBOX,  # RFC 3691 §2
    "MOVE": MAILBOX,  # RFC 6851 §3
    "GETQUOTA": LOGGED_IN, "GETQUOTAROOT": LOGGED_IN, "SETQUOTA": LOGGED_IN,  # RFC 9208 §4.2-4.4
    "SORT": MAILBOX, "THREAD": MAILBOX,  # RFC 5256 §3, §4: selected state
}


def test_the_imap_expectations_cover_the_table():
    assert set(IMAP_VALID) == set(IMAP_PROBE) == set(IMAP_COMMANDS)


async def imap_probe(port: int, state: str, name: str) -> str:
    c = await Conn.open(port)
    try:
        for ln in IMAP_SETUP[state].splitlines():
            assert " OK " in await c.tagged(ln + "\r\n", ln.split()[0])
        reply = await c.tagged(f"p {IMAP_PROBE[name]}\r\n", "p")
        if reply.startswith("+ "):  # IDLE accepted: end it (RFC 2177 §3)
            reply = await c.tagged("DONE\r\n", "p")
        return reply
    finally:
        await c.close()


@pytest.mark.parametrize("state", IMAP_STATES)
@pytest.mark.parametrize("name", sorted(IMAP_PROBE))
async def test_every_imap_command_in_every_state(ports, name, state):
    reply = await imap_probe(ports["imap"], state, name)
    if IMAP_VALID[name][IMAP_STATES.index(state)]:
        assert "not allowed now" not in reply, reply
        assert reply.startswith(("p OK", "p NO")) or (name == "STARTTLS" and "TLS not available" in reply), reply
    else:
        assert reply == f"p BAD {name} not allowed now"


async def test_uid_forms_exist_only_for_the_commands_rfc_3501_gives_one(ports):
    """RFC 3501 §6.4.8: UID COPY, FETCH, SEARCH, STORE; RFC 4315 §2.1 UID EXPUNGE; RFC 6851 §3 UID MOVE."""
    c = await Conn.open(ports["imap"])
    for ln in IMAP_SETUP[SELECTED].splitlines():
        await c.tagged(ln + "\r\n", ln.split()[0])
    for name in ("FETCH", "SEARCH", "STORE", "COPY", "EXPUNGE", "MOVE", "NOOP", "SELECT", "CLOSE"):
        probe = IMAP_PROBE[name].replace("1 ", "1:* ", 1) if name != "EXPUNGE" else "EXPUNGE 999"
        reply = await c.tagged(f"u UID {probe}\r\n", "u")
        has_uid_form = name in ("FETCH", "SEARCH", "STORE", "COPY", "EXPUNGE", "MOVE")
        assert (reply == f"u BAD unknown command {name}") != has_uid_form, reply
    await c.close()


# ---------------------------------------------------------------------- POP3

AUTHORIZATION, TRANSACTION = "AUTHORIZATION", "TRANSACTION"
POP3_STATES = (AUTHORIZATION, TRANSACTION)
POP3_PROBE = {
    "CAPA": "CAPA", "QUIT": "QUIT", "NOOP": "NOOP", "STLS": "STLS", "USER": f"USER {USER}", "PASS": "PASS x",
    "AUTH": "AUTH", "STAT": "STAT", "LIST": "LIST 1", "RETR": "RETR 1", "DELE": "DELE 1", "RSET": "RSET",
    "TOP": "TOP 1 0", "UIDL": "UIDL 1",
}
# In which state each command may be given; the answer expected there.
POP3_VALID = {
    "CAPA": (True, True),  # RFC 2449 §5: either state
    "QUIT": (True, True),  # RFC 1939 §5 (AUTHORIZATION), §6 (UPDATE from TRANSACTION)
    "STLS": (True, False),  # RFC 2595 §4: AUTHORIZATION only
    "USER": (True, False), "PASS": (True, False),  # RFC 1939 §7
    "AUTH": (True, False),  # RFC 5034 §4
    "NOOP": (False, True), "STAT": (False, True), "LIST": (False, True), "RETR": (False, True),
    "DELE": (False, True), "RSET": (False, True),  # RFC 1939 §5
    "TOP": (False, True), "UIDL": (False, True),  # RFC 1939 §7
}
POP3_ANSWER = {"STLS": "-ERR TLS not available", "PASS": "-ERR USER first"}  # valid here, refused for a reason


def test_the_pop3_expectations_cover_the_table():
    assert set(POP3_VALID) == set(POP3_PROBE) == set(POP3_COMMANDS)


@pytest.mark.parametrize("state", POP3_STATES)
@pytest.mark.parametrize("name", sorted(POP3_PROBE))
async def test_every_pop3_command_in_every_state(ports, name, state):
    c = await Conn.open(ports["pop3"])
    try:
        if state == TRANSACTION:
            for ln in (f"USER {USER}", f"PASS {PASSWORD}"):
                c.w.write(ln.encode() + b"\r\n")
                assert (await c.line()).startswith("+OK")
        c.w.write(POP3_PROBE[name].encode() + b"\r\n")
        reply = await c.line()
    finally:
        await c.close()
    if POP3_VALID[name][POP3_STATES.index(state)]:
        assert reply.startswith(POP3_ANSWER.get(name, "+OK")), reply
    else:
        assert reply == "-ERR command not valid in this state"
