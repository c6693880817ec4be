"""The SMTP client against Postfix's smtp-sink (a real server): connection reuse, the per-destination limit, MX
fallbacks, per-recipient outcomes, and reply parsing. A counting TCP relay in front of smtp-sink sees the
connections exactly as the peer does."""

import asyncio
import time

from courrier.delivery.remote import RemoteDelivery, downgrade_8bit, split_reply
from courrier.dns import Resolver
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.path import parse_address
from tests.client.sink import dumped, smtp_sink


class CountingRelay:
    """Forwards TCP to ``port`` and records how many connections were open at once."""

    def __init__(self, port):
        self.target = port
        self.open = self.max_open = self.total = 0

    async def handle(self, r, w):
        self.open += 1
        self.total += 1
        self.max_open = max(self.max_open, self.open)
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target)

            async def pump(a, b):
                try:
                    while data := await a.read(65536):
                        b.write(data)
                        await b.drain()
                finally:
                    b.close()

            await asyncio.gather(pump(r, uw), pump(ur, w), return_exceptions=True)
        finally:
            self.open -= 1

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()


def env(qid, rcpts=("x@sink.test",)):
    return Envelope(queue_id=qid, mail_from=parse_address("a@a.test"), rcpts=[Recipient(parse_address(r)) for r in rcpts],
                    received_at=time.time())


MSG = b"From: a@a.test\r\nSubject: t\r\n\r\nbody\r\n"


def client(fake_dns, port, **kw):
    fake_dns.set("sink.test", {"MX": [(10, "mx.sink.test")]})
    fake_dns.set("mx.sink.test", {"A": ["127.0.0.1"]})
    return RemoteDelivery(resolver=Resolver([fake_dns.address]), hostname="mx.a.test", mx_port=port, **kw)


async def test_connection_reused_between_messages(fake_dns):
    with smtp_sink(dump=True) as (sink_port, dump):
        async with CountingRelay(sink_port) as relay:
            rd = client(fake_dns, relay.port)
            for n in range(5):
                e = env(f"Q{n}")
                out = await rd.deliver("sink.test", e, MSG, list(enumerate(e.rcpts)), lambda r, o: None)
                assert out[0].ok and out[0].host == "mx.sink.test"
            await rd.close()
            assert relay.total == 1 and rd.connections_opened == 1
        assert len(await asyncio.to_thread(dumped, dump, 5)) == 5


async def test_per_destination_limit(fake_dns):
    with smtp_sink("-w", "1") as (sink_port, _):  # 1 s before each DATA reply: transactions overlap
        async with CountingRelay(sink_port) as relay:
            rd = client(fake_dns, relay.port, concurrency_per_destination=3)
            envs = [env(f"C{n}") for n in range(6)]
            outs = await asyncio.gather(*(rd.deliver("sink.test", e, MSG, list(enumerate(e.rcpts)),
                                                     lambda r, o: None) for e in envs))
            await rd.close()
            assert all(o[0].ok for o in outs)
            assert relay.max_open == 3


async def test_refused_rcpt_is_per_recipient_and_mx_fallback(fake_dns):
    with smtp_sink("-f", "RCPT") as (sink_port, _):  # every RCPT refused with 5xx
        rd = client(fake_dns, sink_port)
        fake_dns.set("sink.test", {"MX": [(5, "dead.sink.test"), (10, "mx.sink.test")]})
        fake_dns.set("dead.sink.test", {"A": ["127.0.0.2"]})  # connection refused → next MX
        attempts = []
        e = env("R1", ("a@sink.test", "b@sink.test"))
        out = await rd.deliver("sink.test", e, MSG, list(enumerate(e.rcpts)), lambda r, o: attempts.append((r, o)))
        await rd.close()
        assert out[0].permanent and out[1].permanent and out[0].host == "mx.sink.test"
        assert attempts[0][1].code == 451 and "dead.sink.test" in attempts[0][1].text
        assert attempts[1][1].permanent


async def test_null_mx_nxdomain_and_dns_trouble(fake_dns):
    rd = RemoteDelivery(resolver=Resolver([fake_dns.address], timeout=0.2, lifetime=0.3), hostname="h")
    fake_dns.set("null.test", {"MX": [(0, ".")]})
    fake_dns.set("slow.test", "TIMEOUT")
    e = env("N1")
    rc = list(enumerate(e.rcpts))
    assert (await rd.deliver("null.test", e, MSG, rc, lambda r, o: None))[0].status == "5.1.10"
    assert (await rd.deliver("nowhere.test", e, MSG, rc, lambda r, o: None))[0].status == "5.1.2"
    o = (await rd.deliver("slow.test", e, MSG, rc, lambda r, o: None))[0]
    assert not o.ok and not o.permanent and o.status == "4.4.3"


def test_split_reply_and_downgrade():
    o = split_reply(550, "5.1.1 No such user\nhere", host="h")
    assert (o.code, o.enhanced, o.text, o.permanent) == (550, "5.1.1", "No such user here", True)
    assert split_reply(451, "try later").status == "4.0.0"
    qp = downgrade_8bit("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nété\r\n".encode())
    assert qp is not None and qp.isascii() and b"=C3=A9t=C3=A9" in qp
    assert downgrade_8bit("Subject: é\r\n\r\nx\r\n".encode()) is None  # 8-bit header: not convertible
    bin_part = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xff\xfe\r\n")
    assert downgrade_8bit(bin_part) is None
