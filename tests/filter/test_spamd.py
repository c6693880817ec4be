"""The spamd client against a real spamd (SpamAssassin on loopback, network tests off) and against peers that
misbehave: whatever spamd says or fails to say, the answer is bounded and never becomes a header line."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from courrier.config import HostPort, parse_hostport
from courrier.filter import spamd as sd
from courrier.filter.api import Action
from courrier.filter.spamd import SpamdError, SpamdFilter, SpamResult, parse_reply, scan, spam_headers
from tests.filter.helpers import HOP, envelope, message
from tests.spamd import GTUBE, Spamd
from tests.support import free_port

# What spamd 4.0 answers (recorded from Debian's spamd): SYMBOLS, then CHECK.
SYMBOLS_SPAM = (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 68\r\nSpam: True ; 1002.7 / 5.0\r\n\r\n"
                b"GTUBE,MISSING_DATE,MSGID_SHORT,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO")
CHECK_HAM = b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.0 / 5.0\r\n\r\n"


def test_parse_symbols_and_check_answers() -> None:
    r = parse_reply(SYMBOLS_SPAM)
    assert r == SpamResult(True, 1002.7, 5.0, ("GTUBE", "MISSING_DATE", "MSGID_SHORT", "NO_RECEIVED", "NO_RELAYS",
                                                "TVD_SPACE_RATIO"))
    assert parse_reply(CHECK_HAM) == SpamResult(False, -0.0, 5.0, ())
    assert parse_reply(b"SPAMD/1.1 0 EX_OK\r\nspam: yes ; 7 / 5\r\n\r\n").spam  # protocol 1.0's Yes/No


@pytest.mark.parametrize("answer, why", [
    (b"SPAMD/1.0 76 Bad header line: (EOF)\r\n", "76"),
    (b"HTTP/1.1 200 OK\r\n\r\n", "not a spamd answer"),
    (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\n\r\nA", "no Spam header"),
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9 / 5\r\nContent-length: 30\r\n\r\nA,B", "shorter"),
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: maybe ; x / 5\r\n", "ended before"),
    (b"", "not a spamd answer"),
])
def test_answers_that_are_no_result(answer: bytes, why: str) -> None:
    with pytest.raises(SpamdError, match=why):
        parse_reply(answer)


def test_rule_names_never_inject_header_text() -> None:
    r = parse_reply(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9.0 / 5.0\r\n\r\n"
                    b"GTUBE,\r\nX-Evil: 1,BAD SYMBOL,OK_2," + b"A" * 65 + b",LAST")
    assert r.symbols == ("GTUBE", "OK_2", "LAST")


def test_spam_headers_fold_and_flag_only_spam() -> None:
    many = tuple(f"RULE_NUMBER_{i}" for i in range(40))
    headers = dict(spam_headers(SpamResult(True, 12.34, 5.0, many)))
    assert headers["X-Spam-Flag"] == "YES" and headers["X-Spam-Score"] == "12.3"
    status = headers["X-Spam-Status"]
    assert status.startswith("Yes, score=12.3 required=5.0 tests=RULE_NUMBER_0,")
    lines = status.split("\n")
    assert len(lines) > 1 and all(len(line) + len("X-Spam-Status: ") <= 78 for line in lines)
    assert all(line.startswith("\t") for line in lines[1:])
    assert status.replace("\n\t", "").endswith(",".join(many))
    ham = dict(spam_headers(SpamResult(False, -0.1, 5.0, ())))
    assert "X-Spam-Flag" not in ham and ham["X-Spam-Status"] == "No, score=-0.1 required=5.0 tests=none"


# ------------------------------------------------------------------ a real spamd

async def test_real_spamd_scores_gtube_as_spam(spamd: Spamd) -> None:
    r = await scan(parse_hostport(spamd.address), message(GTUBE, subject="offer").read_all())
    assert r.spam and r.score >= 1000 and "GTUBE" in r.symbols and r.threshold == 5.0


async def test_filter_junks_spam_with_headers(spamd: Spamd) -> None:
    v = await SpamdFilter(parse_hostport(spamd.address)).check(envelope(), HOP, message(GTUBE))
    assert v.action is Action.JUNK and v.folder == "Junk"
    names = [n for n, _ in v.headers]
    assert names == ["X-Spam-Flag", "X-Spam-Score", "X-Spam-Status"]
    assert "GTUBE" in dict(v.headers)["X-Spam-Status"].replace("\n\t", "")


async def test_filter_passes_ham_with_score_and_status(spamd: Spamd) -> None:
    msg = message("Shall we meet for lunch at noon on Friday?", headers="X-Spam-Flag: YES\r\n")
    v = await SpamdFilter(parse_hostport(spamd.address)).check(envelope(), HOP, msg)
    assert v.action is Action.ACCEPT
    headers = dict(v.headers)
    assert "X-Spam-Flag" not in headers and headers["X-Spam-Status"].startswith("No, score=")
    assert float(headers["X-Spam-Score"]) < 5
    assert "NO_RECEIVED" not in headers["X-Spam-Status"]  # spamd saw our Received: line
    assert v.drop_fields == (5,)  # the sender's own X-Spam-Flag is left out of the stored copy


async def test_reject_score_refuses_with_550_5_7_1(spamd: Spamd) -> None:
    v = await SpamdFilter(parse_hostport(spamd.address), reject_score=20).check(envelope(), HOP, message(GTUBE))
    assert v.action is Action.REJECT and v.reply is not None
    assert (v.reply.code, v.reply.enhanced) == (550, "5.7.1") and "spam" in v.reply.text
    v = await SpamdFilter(parse_hostport(spamd.address), reject_score=20).check(envelope(), HOP, message("lunch?"))
    assert v.action is Action.ACCEPT


async def test_big_messages_are_not_scanned(spamd: Spamd) -> None:
    v = await SpamdFilter(parse_hostport(spamd.address), max_size=100).check(envelope(), HOP, message(GTUBE))
    assert v.action is Action.ACCEPT and v.headers == () and "not scanned" in v.note


# ------------------------------------------------------------------ peers that misbehave

async def serve(handler_answer: bytes = b"", *, stall: bool = False) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if stall:
            await asyncio.sleep(3600)
        writer.write(handler_answer)
        await writer.drain()
        writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def address(server: asyncio.Server) -> HostPort:
    return HostPort("127.0.0.1", server.sockets[0].getsockname()[1])


async def test_silent_spamd_is_bounded_in_time() -> None:
    server = await serve(stall=True)
    try:
        started = time.monotonic()
        with pytest.raises(SpamdError, match="no answer within 0.3s"):
            await scan(address(server), b"Subject: x\r\n\r\nx\r\n", timeout=0.3)
        assert time.monotonic() - started < 2
    finally:
        server.close()


async def test_overlong_answer_is_refused() -> None:
    server = await serve(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9 / 5\r\n\r\n" + b"A," * sd.MAX_REPLY)
    try:
        with pytest.raises(SpamdError, match="longer than"):
            await scan(address(server), b"Subject: x\r\n\r\nx\r\n")
    finally:
        server.close()


async def test_spamd_error_code_and_down_spamd() -> None:
    server = await serve(b"SPAMD/1.0 75 EX_TEMPFAIL\r\n")
    try:
        with pytest.raises(SpamdError, match="75 EX_TEMPFAIL"):
            await scan(address(server), b"Subject: x\r\n\r\nx\r\n")
    finally:
        server.close()
    with pytest.raises(SpamdError, match="cannot connect"):
        await scan(HostPort("127.0.0.1", free_port()), b"Subject: x\r\n\r\nx\r\n")


async def test_same_result_as_spamassassins_own_spamc(spamd: Spamd) -> None:
    """SpamAssassin's spamc, asked about the same octets, reports the same score, threshold and rules."""
    data = message(GTUBE, subject="compare").read_all()
    ours = await scan(parse_hostport(spamd.address), data)
    spamc = ["spamc", "-d", "127.0.0.1", "-p", str(spamd.port)]
    checked = subprocess.run([*spamc, "-c"], input=data, capture_output=True, timeout=60)
    symbols = subprocess.run([*spamc, "-y"], input=data, capture_output=True, timeout=60)
    assert checked.returncode == 1  # spamc -c: exit 1 means spam
    assert checked.stdout.decode().strip() == f"{ours.score:.1f}/{ours.threshold:.1f}"
    assert tuple(symbols.stdout.decode().strip().split(",")) == ours.symbols
