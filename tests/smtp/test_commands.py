"""Every SMTP verb in every phase of a session gets the reply the RFCs say, over a real loopback connection to the
engine (courrier/smtp/commands.py is the table under test; the expectations below are written from the RFCs, not
read from the table).

Phases: CONNECTED (no HELO/EHLO yet), HELO, EHLO, MAIL (sender accepted), RCPT (a recipient accepted), BDAT (a
non-LAST chunk accepted). After each probe a NOOP must still get 250: a refused command leaves the session in
step, and a refused BDAT's chunk was consumed rather than read as a command (RFC 3030 §3).
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from courrier.config import LimitsConfig
from courrier.mail.envelope import Envelope
from courrier.mail.message import ReceivedMessage
from courrier.net.limits import ConnectionLimiter
from courrier.smtp import replies as R
from courrier.smtp.commands import COMMANDS, Phase
from courrier.smtp.policy import Policy
from courrier.smtp.protocol import SMTPServer
from courrier.smtp.replies import Reply
from courrier.smtp.session import Session

PLAIN = base64.b64encode(b"\0alice\0secret").decode()


class Accepting(Policy):
    """Says yes to everything the engine lets through, so a refusal seen on the wire is the engine's own."""

    def __init__(self, tls_first: bool = False) -> None:
        self.tls_first = tls_first

    def require_tls(self, session: Session) -> bool:
        return self.tls_first

    def auth_mechanisms(self, session: Session) -> list[str]:
        return ["PLAIN"]

    async def authenticate(self, session: Session, username: str, password: str) -> Reply:
        return R.AUTH_OK if (username, password) == ("alice", "secret") else R.AUTH_FAILED

    async def deliver(self, session: Session, env: Envelope, msg: ReceivedMessage) -> Reply:
        return R.QUEUED.with_text("OK queued")


_EHLO, _MAIL, _RCPT = b"EHLO c.test\r\n", b"MAIL FROM:<a@x.test>\r\n", b"RCPT TO:<b@y.test>\r\n"
# How to reach each phase: the writes of one command each (a BDAT with its chunk), all answered below 400.
SETUP: dict[Phase, tuple[bytes, ...]] = {
    Phase.CONNECTED: (),
    Phase.HELO: (b"HELO c.test\r\n",),
    Phase.EHLO: (_EHLO,),
    Phase.MAIL: (_EHLO, _MAIL),
    Phase.RCPT: (_EHLO, _MAIL, _RCPT),
    Phase.BDAT: (_EHLO, _MAIL, _RCPT, b"BDAT 3\r\nabc"),
}

# The probe for each verb: a well-formed command (a BDAT carries its chunk).
PROBE: dict[str, bytes] = {
    "EHLO": b"EHLO c.test\r\n",
    "HELO": b"HELO c.test\r\n",
    "STARTTLS": b"STARTTLS\r\n",
    "AUTH": b"AUTH PLAIN " + PLAIN.encode() + b"\r\n",
    "MAIL": b"MAIL FROM:<a@x.test>\r\n",
    "RCPT": b"RCPT TO:<b@y.test>\r\n",
    "DATA": b"DATA\r\n",
    "BDAT": b"BDAT 3 LAST\r\nxyz",
    "RSET": b"RSET\r\n",
    "NOOP": b"NOOP\r\n",
    "VRFY": b"VRFY b\r\n",
    "EXPN": b"EXPN list\r\n",
    "HELP": b"HELP\r\n",
    "QUIT": b"QUIT\r\n",
}

ALL = tuple(Phase)
E = Phase.EHLO
OK_250 = (250, None)
SEND_HELO = (503, "5.5.1 Send EHLO/HELO first")  # RFC 5321 §4.1.4: a session opens with EHLO or HELO
SEND_EHLO = (503, "5.5.1 Send EHLO first")  # RFC 4954 §3: AUTH is an ESMTP extension
AUTH_IN_TX = (503, "5.5.1 AUTH not allowed during a mail transaction")  # RFC 4954 §4
NESTED = (503, "5.5.1 Nested MAIL command")  # RFC 5321 §4.1.4: MAIL inside a transaction
NEED_MAIL = (503, "5.5.1 Need MAIL command first")  # RFC 5321 §4.1.4, §4.3.2
NO_RCPT = (554, "5.5.1 No valid recipients")  # RFC 5321 §3.3: DATA with no recipient
DATA_AFTER_BDAT = (503, "5.5.1 DATA not allowed after BDAT")  # RFC 3030 §3
RCPT_IN_BDAT = (503, "5.5.1 RCPT not allowed during BDAT")  # RFC 3030 §2

# (code, text or None) per verb per phase, in the order of ALL.
EXPECTED: dict[str, tuple[tuple[int, str | None], ...]] = {
    "EHLO": (OK_250,) * 6,  # RFC 5321 §4.1.4: EHLO anywhere resets the session to just after the greeting
    "HELO": (OK_250,) * 6,
    "STARTTLS": ((454, "4.7.0 TLS not available"),) * 6,  # RFC 3207 §4: no TLS configured here
    "AUTH": (SEND_EHLO, SEND_EHLO, (235, None), AUTH_IN_TX, AUTH_IN_TX, AUTH_IN_TX),
    "MAIL": (SEND_HELO, (250, None), (250, None), NESTED, NESTED, NESTED),
    "RCPT": (NEED_MAIL, NEED_MAIL, NEED_MAIL, (250, None), (250, None), RCPT_IN_BDAT),
    "DATA": (NEED_MAIL, NEED_MAIL, NEED_MAIL, NO_RCPT, (354, None), DATA_AFTER_BDAT),
    "BDAT": (NEED_MAIL, NEED_MAIL, NEED_MAIL, NO_RCPT, (250, None), (250, None)),
    "RSET": (OK_250,) * 6,  # RFC 5321 §4.1.1.5
    "NOOP": (OK_250,) * 6,  # §4.1.1.9
    "VRFY": ((252, None),) * 6,  # §3.5.3
    "EXPN": ((502, None),) * 6,  # §4.1.1.7: not offered
    "HELP": ((214, None),) * 6,  # §4.1.1.8
    "QUIT": ((221, None),) * 6,  # §4.1.1.10
}


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    lines = []
    while True:
        line = (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\r\n")
        assert line, "the server closed the connection"
        lines.append(line[4:])
        if line[3:4] != "-":
            return int(line[:3]), "\n".join(lines)


async def dialogue(policy: Policy, setup: tuple[bytes, ...], probe: bytes, then: bytes = b"",
                   answers: int = 1) -> list[tuple[int, str]]:
    """The replies to: the greeting, each ``setup`` command, the probe (``answers`` replies: a pipelined group
    has one per command), and ``then`` (if any)."""
    limits = LimitsConfig()
    server = SMTPServer(listener="smtp", hostname="mx.test", policy=policy, limits=limits,
                        limiter=ConnectionLimiter(limits))
    listening = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        replies = [await read_reply(reader)]
        for step in setup:
            writer.write(step)
            replies.append(await read_reply(reader))
        writer.write(probe)
        replies += [await read_reply(reader) for _ in range(answers)]
        if then:
            writer.write(then)
            replies.append(await read_reply(reader))
        return replies
    finally:
        writer.close()
        listening.close()
        await listening.wait_closed()


def test_the_expectations_cover_every_verb_of_the_table():
    assert set(EXPECTED) == set(PROBE) == set(COMMANDS)


@pytest.mark.parametrize("phase", ALL, ids=[p.value for p in ALL])
@pytest.mark.parametrize("verb", sorted(EXPECTED))
def test_every_verb_in_every_phase(verb, phase):
    code, text = EXPECTED[verb][ALL.index(phase)]
    ends = code in (221, 354)  # QUIT closes; DATA's payload would follow
    replies = asyncio.run(dialogue(Accepting(), SETUP[phase], PROBE[verb], b"" if ends else b"NOOP\r\n"))
    steps = len(SETUP[phase])
    assert all(c < 400 for c, _ in replies[:1 + steps]), replies  # reaching the phase succeeded
    got = replies[1 + steps]
    assert got[0] == code, (verb, phase, got)
    if text is not None:
        assert got[1] == text, (verb, phase, got)
    if not ends:
        assert replies[-1][0] == 250, "the session is still in step after the probe"


# RFC 3207 §4, RFC 6409 §4.3: while TLS is required, only these may be used before STARTTLS.
BEFORE_TLS = {"EHLO", "HELO", "STARTTLS", "RSET", "NOOP", "HELP", "QUIT"}


@pytest.mark.parametrize("verb", sorted(EXPECTED))
def test_only_the_before_tls_verbs_work_while_tls_is_required(verb):
    replies = asyncio.run(dialogue(Accepting(tls_first=True), (_EHLO,), PROBE[verb]))
    code = replies[-1][0]
    if verb in BEFORE_TLS:
        assert code == EXPECTED[verb][ALL.index(E)][0]
    else:
        assert replies[-1] == (530, "5.7.0 Must issue a STARTTLS command first")


def test_a_refused_bdat_without_a_valid_size_skips_nothing():
    """A BDAT line that announces no chunk has none to skip: the reply comes at once and the next line is a
    command again (the parser and the dispatcher agree on what a BDAT announces)."""
    replies = asyncio.run(dialogue(Accepting(), (), b"BDAT x LAST\r\n", b"NOOP\r\n"))
    assert [c for c, _ in replies] == [220, 503, 250]


def test_the_group_enders_are_those_rfc_2920_names():
    """RFC 2920 §3.1: EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP end a pipelined group; so do STARTTLS (RFC 3207
    §4.2), AUTH (RFC 4954 §4) and HELO, which change the session's state as EHLO does. MAIL, RCPT, RSET and BDAT
    may appear anywhere in a group (RFC 2920 §3.1, RFC 3030 §4)."""
    enders = {name for name, c in COMMANDS.items() if c.ends_group}
    assert enders == {"EHLO", "HELO", "STARTTLS", "AUTH", "DATA", "VRFY", "EXPN", "NOOP", "QUIT"}


def test_a_pipelined_group_is_answered_in_order():
    """RFC 2920 §3.1: MAIL, RCPT and RSET anywhere in a group, NOOP at its end; one write, five replies in order."""
    group = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRSET\r\nNOOP\r\n"
    replies = asyncio.run(dialogue(Accepting(), (_EHLO,), group, answers=5))
    assert [r[1].split(" ", 1)[0] for r in replies[2:]] == ["2.1.0", "2.1.5", "2.1.5", "2.0.0", "2.0.0"]
