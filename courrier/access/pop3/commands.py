"""The POP3 command table: which state accepts which verb, with the RFC section of each rule."""

from __future__ import annotations

from dataclasses import dataclass

AUTHORIZATION, TRANSACTION = "AUTHORIZATION", "TRANSACTION"  # RFC 1939 §3 (UPDATE is entered by QUIT)
BOTH = frozenset({AUTHORIZATION, TRANSACTION})


@dataclass(frozen=True)
class Command:
    states: frozenset[str]
    rfc: str


COMMANDS: dict[str, Command] = {
    "CAPA": Command(BOTH, "RFC 2449 §5"),
    "QUIT": Command(BOTH, "RFC 1939 §5, §6"),
    "NOOP": Command(frozenset({TRANSACTION}), "RFC 1939 §5"),
    "STLS": Command(frozenset({AUTHORIZATION}), "RFC 2595 §4"),
    "USER": Command(frozenset({AUTHORIZATION}), "RFC 1939 §7"),
    "PASS": Command(frozenset({AUTHORIZATION}), "RFC 1939 §7"),
    "AUTH": Command(frozenset({AUTHORIZATION}), "RFC 5034 §4"),
    "STAT": Command(frozenset({TRANSACTION}), "RFC 1939 §5"),
    "LIST": Command(frozenset({TRANSACTION}), "RFC 1939 §5"),
    "RETR": Command(frozenset({TRANSACTION}), "RFC 1939 §5"),
    "DELE": Command(frozenset({TRANSACTION}), "RFC 1939 §5"),
    "RSET": Command(frozenset({TRANSACTION}), "RFC 1939 §5"),
    "TOP": Command(frozenset({TRANSACTION}), "RFC 1939 §7"),
    "UIDL": Command(frozenset({TRANSACTION}), "RFC 1939 §7"),
}

MAX_LINE = 512  # RFC 2449 §4 allows 255 octets for commands; SASL responses (RFC 5034 §4) need more room
MAX_AUTH_LINE = 8192
MAX_ERRORS = 10
