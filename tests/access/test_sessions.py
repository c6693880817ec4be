"""POP3 and IMAP sessions in-process over real loopback sockets: malformed and random input never crashes a
session, and changes made by one session reach another (RFC 3501 §5.2)."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from courrier.access.auth import Authenticator
from courrier.access.imap.session import IMAPServer
from courrier.access.pop3.protocol import POP3Server
from courrier.accounts import Accounts
from courrier.config import Config
from courrier.mailbox import maildir
from courrier.mailbox.store import MaildirStore
from courrier.net.listener import StreamListener
from courrier.smtp.protocol import ConnectionLimiter

USER, PASSWORD = "bob@example.test", "secret"


@pytest.fixture
async def servers(tmp_path):
    cfg = dataclasses.replace(Config(), data_dir=tmp_path, domains=("example.test",))
    accounts = Accounts(cfg.db_path)
    accounts.add(USER, PASSWORD)
    store = MaildirStore(tmp_path)
    box = maildir.ensure(store.account_root(USER))
    for i in range(3):
        maildir.write_new(box, [f"Subject: m{i}\n\nbody {i}\n".encode()])
    auth = Authenticator(cfg, accounts, store)
    limiter = ConnectionLimiter(cfg.limits)
    imap = StreamListener("imap", IMAPServer(store=store, auth=auth, tls_context=None, limits=cfg.limits,
                                             hostname="mx.test").handler(False), limiter)
    pop3 = StreamListener("pop3", POP3Server(store=store, auth=auth, tls_context=None,
                                             idle_timeout=60).handler(False), limiter)
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lst.factory, "127.0.0.1", 0) for lst in (imap, pop3)]
    ports = {n: s.sockets[0].getsockname()[1] for n, s in zip(("imap", "pop3"), servers, strict=True)}
    yield ports, store
    for s in servers:
        s.close()
    await imap.shutdown()
    await pop3.shutdown()
    store.close()


class Client:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w

    @classmethod
    async def open(cls, port: int) -> Client:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        c = cls(r, w)
        await c.line()
        return c

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.r.readline(), 10)

    async def cmd(self, data: bytes, until: bytes) -> list[bytes]:
        self.w.write(data)
        out = []
        while True:
            ln = await self.line()
            assert ln, f"closed after {out!r}"
            out.append(ln)
            if ln.startswith(until):
                return out


async def test_imap_random_input_gets_bad_never_a_crash(servers):
    ports, _ = servers
    rnd = random.Random(3501)
    c = await Client.open(ports["imap"])
    await c.cmd(f"l LOGIN {USER} {PASSWORD}\r\n".encode(), b"l OK")
    for i in range(200):
        junk = bytes(rnd.choice(b'ab1*:()[]<>{}"\\ .%\x00\xff\tFETCHBODY') for _ in range(rnd.randint(0, 40)))
        junk = junk.replace(b"\r", b"").replace(b"\n", b"")
        if junk.rstrip().endswith(b"}"):
            junk += b"x"
        c.w.write(b"t%d " % i + junk + b"\r\n")
        while True:
            ln = await c.line()
            assert ln, "connection closed"
            if ln.startswith(b"t%d " % i) or ln.startswith(b"* BAD"):
                break
        if b"BYE" in ln:
            break
        if i % 8 == 7:  # the error limit closes a session that keeps failing; start a new one
            c.w.close()
            c = await Client.open(ports["imap"])
            await c.cmd(f"l LOGIN {USER} {PASSWORD}\r\n".encode(), b"l OK")
    ok = await c.cmd(b"z NOOP\r\n", b"z ")
    assert ok[-1].startswith(b"z OK")


async def test_flag_change_and_expunge_reach_the_other_session(servers):
    ports, _ = servers
    a, b = await Client.open(ports["imap"]), await Client.open(ports["imap"])
    for c in (a, b):
        await c.cmd(f"l LOGIN {USER} {PASSWORD}\r\ns SELECT INBOX\r\n".encode(), b"s OK")
    await a.cmd(b"1 STORE 2 +FLAGS.SILENT (\\Deleted \\Seen)\r\n", b"1 OK")
    got = await b.cmd(b"2 NOOP\r\n", b"2 OK")
    assert any(ln.startswith(b"* 2 FETCH (UID 2 FLAGS (") and b"\\Deleted" in ln for ln in got), got
    await a.cmd(b"3 EXPUNGE\r\n", b"3 OK")
    got = await b.cmd(b"4 FETCH 1:* FLAGS\r\n", b"4 OK")
    assert not any(b"EXPUNGE" in ln for ln in got)  # RFC 3501 §7.4.1: not during FETCH
    got = await b.cmd(b"5 UID SEARCH ALL\r\n", b"5 OK")
    assert got[:2] == [b"* 2 EXPUNGE\r\n", b"* SEARCH 1 3\r\n"]  # held back during FETCH, sent before UID SEARCH


async def test_pop3_bad_input_and_states(servers):
    ports, _ = servers
    c = await Client.open(ports["pop3"])
    for bad, want in ((b"STAT\r\n", b"-ERR"), (b"PASS x\r\n", b"-ERR"), (b"FROB\r\n", b"-ERR"),
                      (b"X" * 600 + b"\r\n", b"-ERR")):
        c.w.write(bad)
        assert (await c.line()).startswith(want), bad
    await c.cmd(f"USER {USER}\r\n".encode(), b"+OK")
    await c.cmd(f"PASS {PASSWORD}\r\n".encode(), b"+OK")
    for bad in (b"RETR 0\r\n", b"RETR x\r\n", b"TOP 1\r\n", b"DELE 9\r\n", b"LIST 4\r\n"):
        c.w.write(bad)
        assert (await c.line()).startswith(b"-ERR"), bad
    got = await c.cmd(b"LIST\r\n", b".")
    assert len(got) == 5
