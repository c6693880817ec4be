"""The SMTP engine and a client's EOF, property-based: however the client's bytes are cut into reads, and wherever
the client shuts down its write side, a message is delivered exactly when its end marker arrived, and a 250 for it
is sent exactly when it was delivered (RFC 5321 §4.1.1.4, §4.2; RFC 2920 §3.1). Whole-program scenarios with raw
sockets are in tests/e2e/test_07_half_close.py.

The engine runs in-process on a loopback TCP connection; its policy records deliveries (the engine is under test).
"""

from __future__ import annotations

import asyncio
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courrier.config import LimitsConfig
from courrier.mail.envelope import Envelope
from courrier.mail.message import ReceivedMessage
from courrier.net.limits import ConnectionLimiter
from courrier.smtp import replies as R
from courrier.smtp.policy import Policy
from courrier.smtp.protocol import SMTPServer
from courrier.smtp.replies import Reply
from courrier.smtp.session import Session

BODY = b"Subject: t\r\n\r\n..a line that starts with a dot\r\nline two\r\n"
DATA_WIRE = (b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n" + BODY.replace(b"\r\n.", b"\r\n..")
             + b".\r\nQUIT\r\n")
BDAT_WIRE = (b"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT %d LAST\r\n" % len(BODY) + BODY
             + b"QUIT\r\n")
FULL_REPLIES = {DATA_WIRE: [220, 250, 250, 250, 354, 250, 221], BDAT_WIRE: [220, 250, 250, 250, 250, 221]}
END_OF_MESSAGE = {DATA_WIRE: DATA_WIRE.index(b".\r\nQUIT") + 3, BDAT_WIRE: len(BDAT_WIRE) - len(b"QUIT\r\n")}


class Recorder(Policy):
    """Accepts everything and records what would be delivered."""

    def __init__(self) -> None:
        self.delivered: list[bytes] = []

    async def deliver(self, session: Session, env: Envelope, msg: ReceivedMessage) -> Reply:
        await asyncio.sleep(0.001)  # storage takes time: the reply comes after the EOF was seen
        self.delivered.append(msg.read_all())
        return R.QUEUED.with_text("OK")


async def session(wire: bytes, cuts: list[int]) -> tuple[list[int], list[bytes]]:
    """Sends ``wire`` in pieces cut at ``cuts`` (each piece its own read, as far as the kernel lets it), then
    shuts down the write side; returns the reply codes read until the server closed, and the deliveries."""
    policy = Recorder()
    limits = LimitsConfig()
    server = SMTPServer(listener="smtp", hostname="mx.test", policy=policy, limits=limits,
                        limiter=ConnectionLimiter(limits))
    with socket.create_server(("127.0.0.1", 0)) as listening:
        ours = socket.create_connection(listening.getsockname())
        theirs, _ = listening.accept()
    loop = asyncio.get_running_loop()
    await loop.connect_accepted_socket(server, theirs)
    ours.setblocking(False)
    bounds = [0, *sorted(set(cuts)), len(wire)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            await loop.sock_sendall(ours, wire[a:b])
            for _ in range(3):
                await asyncio.sleep(0)
    ours.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := await asyncio.wait_for(loop.sock_recv(ours, 65536), 5):
        out += chunk
    ours.close()
    codes = [int(ln[:3]) for ln in out.split(b"\r\n") if ln[3:4] == b" "]
    return codes, policy.delivered


cuts = st.lists(st.integers(min_value=1, max_value=len(DATA_WIRE) - 1), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire=st.sampled_from([DATA_WIRE, BDAT_WIRE]), cuts=cuts)
def test_every_command_before_the_eof_is_answered(wire, cuts):
    codes, delivered = asyncio.run(session(wire, [c for c in cuts if c < len(wire)]))
    assert codes == FULL_REPLIES[wire]
    assert delivered == [BODY]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire=st.sampled_from([DATA_WIRE, BDAT_WIRE]), data=st.data())
def test_eof_anywhere_delivers_exactly_what_was_complete(wire, data):
    end = data.draw(st.integers(min_value=0, max_value=len(wire)), label="eof at")
    split = data.draw(st.lists(st.integers(min_value=1, max_value=max(1, end - 1)), max_size=3), label="cuts")
    codes, delivered = asyncio.run(session(wire[:end], [c for c in split if c < end]))
    complete = end >= END_OF_MESSAGE[wire]
    assert delivered == ([BODY] if complete else [])
    full = FULL_REPLIES[wire]
    assert codes == full[:len(codes)]  # answers in order, never one for a command not (completely) received
    message_ok = len(full) - 2  # index of the end-of-message 250
    assert (len(codes) > message_ok) == complete  # a 250 for the message exactly when it was delivered
    assert (221 in codes) == (end == len(wire))  # QUIT answered only when its CRLF arrived
