"""The ManageSieve command table (RFC 5804 §2), in the row shape every protocol uses (courrier/net/commands.py):
which state accepts which verb, the ``ms_<verb>`` method that runs it, and the RFC section."""

from __future__ import annotations

from courrier.net.commands import Command, table

NONAUTH, AUTH = "NONAUTH", "AUTH"  # RFC 5804 §1.2: before and after AUTHENTICATE
STATES = (NONAUTH, AUTH)
BOTH = frozenset(STATES)
BEFORE = frozenset({NONAUTH})
AFTER = frozenset({AUTH})

COMMANDS: dict[str, Command[str]] = table(
    (
        Command("CAPABILITY", "ms_capability", BOTH, "RFC 5804 §2.4"),
        Command("LOGOUT", "ms_logout", BOTH, "RFC 5804 §2.3"),
        Command("NOOP", "ms_noop", BOTH, "RFC 5804 §2.13"),
        Command("STARTTLS", "ms_starttls", BEFORE, "RFC 5804 §2.2"),
        Command("AUTHENTICATE", "ms_authenticate", BEFORE, "RFC 5804 §2.1"),
        Command("HAVESPACE", "ms_havespace", AFTER, "RFC 5804 §2.5"),
        Command("PUTSCRIPT", "ms_putscript", AFTER, "RFC 5804 §2.6"),
        Command("LISTSCRIPTS", "ms_listscripts", AFTER, "RFC 5804 §2.7"),
        Command("SETACTIVE", "ms_setactive", AFTER, "RFC 5804 §2.8"),
        Command("GETSCRIPT", "ms_getscript", AFTER, "RFC 5804 §2.9"),
        Command("DELETESCRIPT", "ms_deletescript", AFTER, "RFC 5804 §2.10"),
        Command("RENAMESCRIPT", "ms_renamescript", AFTER, "RFC 5804 §2.11"),
        Command("CHECKSCRIPT", "ms_checkscript", AFTER, "RFC 5804 §2.12"),
    ),
    phases=STATES,
)

MAX_LINE = 8192           # a command line without its literals
MAX_QUOTED = 1024         # RFC 5804 §4: quoted strings are at most 1024 octets
MAX_LITERAL_BEFORE_AUTH = 8192  # SASL responses
MAX_ERRORS = 10
