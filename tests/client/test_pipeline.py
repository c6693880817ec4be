"""courrier.client.pipeline against Postfix's smtp-sink: one write per pipelined group (RFC 2920), dot-stuffing,
lock step without PIPELINING, refused recipients, a peer that hangs up while the connection is parked, timeouts."""

import asyncio

import pytest

from courrier.client.pipeline import Connection, ConnectionLost, ReplyTimeout, dot_stuff
from tests.client.sink import dumped, smtp_sink


class Recorder:
    """A TCP relay in front of the sink that keeps each chunk the client wrote, as the peer reads it."""

    def __init__(self, port):
        self.target, self.chunks = port, []

    async def handle(self, r, w):
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target)

        async def up():
            while data := await r.read(65536):
                self.chunks.append(data)
                uw.write(data)
                await uw.drain()
            uw.close()

        async def down():
            while data := await ur.read(65536):
                w.write(data)
                await w.drain()
            w.close()

        await asyncio.gather(up(), down(), return_exceptions=True)

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()


MSG = b"Subject: dots\r\n\r\n.leading dot\r\nmiddle\r\n..two\r\n."


async def test_one_write_per_group_and_dot_stuffing():
    with smtp_sink(dump=True) as (port, dump):
        async with Recorder(port) as rec:
            c = await Connection.open("127.0.0.1", rec.port, timeout=5)
            assert c.greeting.code == 220 and (await c.ehlo("client.test")).code == 250 and c.supports("pipelining")
            for n in range(2):  # two transactions on one connection
                rec.chunks.clear()
                ex = await c.send(f"<a{n}@a.test> SIZE=100", ["<x@b.test>", "<y@b.test> NOTIFY=NEVER"], MSG)
                assert ex.mail.code == 250 and [r.code for r in ex.rcpts] == [250, 250]
                assert ex.sent and ex.data.code == 250 and ex.data.text.startswith("2.0.0")
                assert rec.chunks[0] == (f"MAIL FROM:<a{n}@a.test> SIZE=100\r\nRCPT TO:<x@b.test>\r\n"
                                         "RCPT TO:<y@b.test> NOTIFY=NEVER\r\nDATA\r\n").encode()
                assert rec.chunks[1] == dot_stuff(MSG) + b".\r\n"
            await c.quit()
        [first, _] = await asyncio.to_thread(dumped, dump, 2)
    # the sink un-stuffs what it received (LF line ends in its dump): the message came through as it was
    assert first.endswith(b"Subject: dots\n\n.leading dot\nmiddle\n..two\n.\n\n")


async def test_lock_step_without_pipelining_and_refused_recipients():
    with smtp_sink("-p") as (port, _):
        c = await Connection.open("127.0.0.1", port, timeout=5)
        await c.ehlo("client.test")
        assert not c.supports("pipelining")
        ex = await c.send("<a@a.test>", ["<x@b.test>"], b"Subject: x\r\n\r\nbody")
        assert ex.sent and ex.data.code == 250
        await c.quit()
    with smtp_sink("-f", "RCPT") as (port, _):  # every RCPT refused
        c = await Connection.open("127.0.0.1", port, timeout=5)
        await c.ehlo("client.test")
        ex = await c.send("<a@a.test>", ["<x@b.test>", "<y@b.test>"], b"Subject: x\r\n\r\nbody\r\n")
        assert [r.code // 100 for r in ex.rcpts] == [5, 5] and not ex.sent
        assert (await c.rset()).code == 250 and c.reusable  # the replies are all read: the connection goes on
        await c.quit()


async def test_peer_gone_while_parked_and_timeouts():
    with smtp_sink() as (port, _):
        c = await Connection.open("127.0.0.1", port, timeout=5)
        await c.ehlo("client.test")
    # the sink is gone: the parked connection fails before any reply of the new transaction
    await asyncio.sleep(0.1)
    with pytest.raises(ConnectionLost) as e:
        await c.send("<a@a.test>", ["<x@b.test>"], b"x\r\n")
    assert e.value.before_reply and not c.reusable

    async def silent(r, w):  # accepts and never greets
        await asyncio.sleep(5)
        w.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        with pytest.raises(ReplyTimeout):
            await Connection.open("127.0.0.1", server.sockets[0].getsockname()[1], timeout=0.3)
    finally:
        server.close()
