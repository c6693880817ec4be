"""SpamAssassin's spamd as a filter: a small async SPAMC client and the verdict it leads to.

The SPAMC/SPAMD protocol (SpamAssassin's spamd/PROTOCOL, "perpetually in draft") is HTTP-like: a request line
``SYMBOLS SPAMC/1.5``, ``Content-length``, a blank line and the message; spamd answers ``SPAMD/1.1 0 EX_OK`` (a
sysexits.h code: anything but 0 is an error and ends the answer), a ``Spam: True ; 15.3 / 5.0`` header (verdict,
score, the threshold spamd is configured with), a blank line and, for SYMBOLS, the names of the rules that hit,
comma-separated. SYMBOLS is the one command that gives both the score and the rules without sending the message back.

Bounds: messages over ``MAX_SCAN_SIZE`` are not scanned (spamc's own default limit: spam is small, and a scanner
that reads 25 MB attachments is a denial of service waiting to happen); connecting and scanning each have a time
limit; spamd's answer is read up to ``MAX_REPLY`` octets. Rule names become header text only when they look like
rule names, so spamd's answer can never inject a header line.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from courrier.config import HostPort
from courrier.filter.api import Action, MessageFilter, Verdict, field_indices
from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from courrier.mail.trace import received

MAX_SCAN_SIZE = 512 * 1024  # spamc -s default (500 KB)
MAX_REPLY = 64 * 1024
CONNECT_TIMEOUT = 5.0
SCAN_TIMEOUT = 30.0
MAX_SYMBOLS = 200

SPAM_FIELDS = frozenset({"x-spam-flag", "x-spam-score", "x-spam-status"})

_STATUS = re.compile(r"^SPAMD/(\d+\.\d+) +(\d+) *(.*)$")
_SPAM = re.compile(r"^(True|False|Yes|No) *; *(-?\d+(?:\.\d+)?) */ *(-?\d+(?:\.\d+)?)$", re.IGNORECASE)
_SYMBOL = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class SpamdError(Exception):
    """spamd could not be reached, or answered something that is not a result."""


@dataclass(frozen=True)
class SpamResult:
    spam: bool
    score: float
    threshold: float
    symbols: tuple[str, ...] = ()


def parse_reply(data: bytes) -> SpamResult:
    """A complete SYMBOLS (or CHECK) answer → SpamResult; SpamdError when it is not a successful one."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = _STATUS.match(lines[0])
    if not m:
        raise SpamdError(f"not a spamd answer: {lines[0][:80]!r}")
    if m.group(2) != "0":  # sysexits.h: EX_USAGE 64, EX_PROTOCOL 76, EX_TEMPFAIL 75…
        raise SpamdError(f"spamd answered {m.group(2)} {m.group(3)[:80]}")
    if not sep:
        raise SpamdError("spamd's answer ended before its headers did")
    spam = None
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "spam":
            spam = _SPAM.match(value.strip())
        elif name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if spam is None:
        raise SpamdError("spamd's answer has no Spam header")
    if length is not None and len(body) < length:
        raise SpamdError("spamd's answer is shorter than its Content-length")
    text = body[:length].decode("latin-1") if length is not None else body.decode("latin-1")
    symbols = tuple(s for s in (x.strip() for x in text.split(",")) if _SYMBOL.match(s))[:MAX_SYMBOLS]
    return SpamResult(spam.group(1).lower() in ("true", "yes"), float(spam.group(2)), float(spam.group(3)), symbols)


async def scan(address: HostPort, message: bytes, *, timeout: float = SCAN_TIMEOUT) -> SpamResult:
    """Asks spamd at ``address`` about ``message`` (CRLF line ends, as received) with the SYMBOLS command."""
    return parse_reply(await _exchange(address, b"SYMBOLS", message, timeout))


async def report(address: HostPort, message: bytes, *, timeout: float = SCAN_TIMEOUT) -> SpamReport:
    """The REPORT command: the verdict with every rule that hit, its points and its description (what the capture
    inspector's ``sa-check`` shows, as Mailpit's ``internal/spamassassin/spamc``)."""
    data = await _exchange(address, b"REPORT", message, timeout)
    verdict = parse_reply(data)  # its rule names are REPORT's words here: only the verdict and score are kept
    return SpamReport(SpamResult(verdict.spam, verdict.score, verdict.threshold), parse_report_rules(data))


async def _exchange(address: HostPort, command: bytes, message: bytes, timeout: float) -> bytes:
    """One request, the whole answer (at most ``MAX_REPLY`` octets)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port),
                                                CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise SpamdError(f"cannot connect to spamd at {address}: {e or 'timeout'}") from None
    try:
        async with asyncio.timeout(timeout):
            writer.write(b"%s SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % (command, len(message)))
            writer.write(message)
            writer.write_eof()  # "after each side is done writing, it shuts down its side of the connection"
            await writer.drain()
            data = await reader.read(MAX_REPLY + 1)
            while len(data) <= MAX_REPLY and (more := await reader.read(MAX_REPLY + 1 - len(data))):
                data += more
    except TimeoutError:
        raise SpamdError(f"spamd at {address} gave no answer within {timeout:g}s") from None
    except OSError as e:
        raise SpamdError(f"spamd at {address}: {e}") from None
    finally:
        writer.close()
    if len(data) > MAX_REPLY:
        raise SpamdError(f"spamd's answer is longer than {MAX_REPLY} octets")
    return data


@dataclass(frozen=True)
class SpamRule:
    points: float
    name: str
    description: str


@dataclass(frozen=True)
class SpamReport:
    result: SpamResult
    rules: tuple[SpamRule, ...]


_RULE_ROW = re.compile(r"^\s?(-?[0-9.]+)\s([a-zA-Z0-9_]*)(\W*)(.*)")  # a "pts rule description" row of REPORT


def parse_report_rules(data: bytes) -> tuple[SpamRule, ...]:
    """The rows after "Content analysis details" in a REPORT answer; a description wrapped onto lines indented by
    28 spaces is joined back into one line."""
    text = data.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace").replace("\r\n", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n")).replace("\n" + " " * 28, " ")
    rules: list[SpamRule] = []
    reached = False
    for row in text.split("\n"):
        if row.startswith("Content analysis details"):
            reached = True
            continue
        m = _RULE_ROW.match(row) if reached else None
        if m and len(rules) < MAX_SYMBOLS:
            try:
                points = float(m.group(1))
            except ValueError:
                points = 0.0
            rules.append(SpamRule(points, m.group(2), m.group(4)))
    return tuple(rules)


def spam_headers(result: SpamResult) -> tuple[tuple[str, str], ...]:
    """X-Spam-Flag (spam only), X-Spam-Score and X-Spam-Status as SpamAssassin writes them, the rule list folded
    at commas so that lines stay under 78 characters (RFC 5322 §2.1.1)."""
    status = f"{'Yes' if result.spam else 'No'}, score={result.score:.1f} required={result.threshold:.1f}"
    lines = [status + " tests="]
    for i, sym in enumerate(result.symbols):
        piece = sym + ("," if i < len(result.symbols) - 1 else "")
        if len(lines[-1]) + len(piece) > 64 and not lines[-1].endswith("="):
            lines.append("\t")
        lines[-1] += piece
    if not result.symbols:
        lines[-1] += "none"
    out = [("X-Spam-Score", f"{result.score:.1f}"), ("X-Spam-Status", "\n".join(lines))]
    return ((("X-Spam-Flag", "YES"),) if result.spam else ()) + tuple(out)


class SpamdFilter(MessageFilter):
    """Scores each message with spamd: X-Spam-* fields on every scanned message, spam filed to Junk, a score at or
    above ``reject_score`` (when > 0) refused with 550 5.7.1 (RFC 3463 §3.8: delivery not authorized, message
    refused) before the 250."""

    name = "spamd"

    def __init__(self, address: HostPort, reject_score: float = 0.0, *, timeout: float = SCAN_TIMEOUT,
                 max_size: int = MAX_SCAN_SIZE) -> None:
        self.address, self.reject_score, self.timeout, self.max_size = address, reject_score, timeout, max_size

    async def check(self, envelope: Envelope, hop: Hop, message: ReceivedMessage) -> Verdict:
        if message.size > self.max_size:
            return Verdict(note=f"not scanned: {message.size} octets is over {self.max_size}")
        data = await asyncio.to_thread(message.read_all)
        # spamd sees our Received: line too, so that SpamAssassin knows the client (its trust path starts there)
        trace = received(hop, envelope, None).replace("\n", "\r\n").encode("utf-8")
        result = await scan(self.address, trace + data, timeout=self.timeout)
        note = f"score={result.score:.1f} required={result.threshold:.1f} tests={','.join(result.symbols[:20])}"
        if self.reject_score and result.score >= self.reject_score:
            return Verdict(Action.REJECT, reply=Reply(550, "5.7.1", "Message refused as spam "
                                                      f"(score {result.score:.1f}, limit {self.reject_score:g})"),
                           note=note)
        return Verdict(Action.JUNK if result.spam else Action.ACCEPT, spam_headers(result),
                       drop_fields=field_indices(data, SPAM_FIELDS), note=note)
