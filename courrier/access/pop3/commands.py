"""The POP3 command table, in the row shape every protocol uses (courrier/net/commands.py): which state accepts
which verb (checked once, at dispatch, from the row), the ``pop3_<verb>`` method that runs it, and the RFC section
of each rule."""

from __future__ import annotations

from courrier.net.commands import Command, table

AUTHORIZATION, TRANSACTION = "AUTHORIZATION", "TRANSACTION"  # RFC 1939 §3 (UPDATE is entered by QUIT)
STATES = (AUTHORIZATION, TRANSACTION)
BOTH = frozenset(STATES)
IN_AUTHORIZATION = frozenset({AUTHORIZATION})
IN_TRANSACTION = frozenset({TRANSACTION})

COMMANDS: dict[str, Command[str]] = table(
    (
        Command("CAPA", "pop3_capa", BOTH, "RFC 2449 §5"),
        Command("QUIT", "pop3_quit", BOTH, "RFC 1939 §5, §6"),
        Command("NOOP", "pop3_noop", IN_TRANSACTION, "RFC 1939 §5"),
        Command("STLS", "pop3_stls", IN_AUTHORIZATION, "RFC 2595 §4"),
        Command("USER", "pop3_user", IN_AUTHORIZATION, "RFC 1939 §7"),
        Command("PASS", "pop3_pass", IN_AUTHORIZATION, "RFC 1939 §7"),
        Command("AUTH", "pop3_auth", IN_AUTHORIZATION, "RFC 5034 §4"),
        Command("STAT", "pop3_stat", IN_TRANSACTION, "RFC 1939 §5"),
        Command("LIST", "pop3_list", IN_TRANSACTION, "RFC 1939 §5"),
        Command("RETR", "pop3_retr", IN_TRANSACTION, "RFC 1939 §5"),
        Command("DELE", "pop3_dele", IN_TRANSACTION, "RFC 1939 §5"),
        Command("RSET", "pop3_rset", IN_TRANSACTION, "RFC 1939 §5"),
        Command("TOP", "pop3_top", IN_TRANSACTION, "RFC 1939 §7"),
        Command("UIDL", "pop3_uidl", IN_TRANSACTION, "RFC 1939 §7"),
    ),
    phases=STATES,
)

MAX_LINE = 512  # RFC 2449 §4 allows 255 octets for commands; SASL responses (RFC 5034 §4) need more room
MAX_AUTH_LINE = 8192
MAX_ERRORS = 10
