"""The IMAP command table: verb → handler, the states it is valid in (RFC 3501 §3, §6), whether a UID form exists
(§6.4.8) and whether EXPUNGE responses may follow it (§7.4.1: not during FETCH, STORE, SEARCH)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from courrier.access.imap import cmd_any, cmd_auth, cmd_mailbox, cmd_message
from courrier.access.imap.state import AUTH, NOT_AUTH, SELECTED

Handler = Callable[..., Awaitable[Any]]
ANY = frozenset({NOT_AUTH, AUTH, SELECTED})
NOT_AUTHENTICATED = frozenset({NOT_AUTH})
AUTHENTICATED = frozenset({AUTH, SELECTED})
IN_SELECTED = frozenset({SELECTED})


@dataclass(frozen=True)
class Command:
    handler: Handler
    states: frozenset[str]
    rfc: str
    uid_ok: bool = False
    expunge_ok: bool = True
    refresh: bool = True  # bring the selected view up to date before running (not for commands that leave it)


COMMANDS: dict[str, Command] = {
    "CAPABILITY": Command(cmd_any.capability, ANY, "RFC 3501 §6.1.1"),
    "NOOP": Command(cmd_any.noop, ANY, "RFC 3501 §6.1.2"),
    "LOGOUT": Command(cmd_any.logout, ANY, "RFC 3501 §6.1.3"),
    "ID": Command(cmd_any.id_, ANY, "RFC 2971 §3.1"),
    "STARTTLS": Command(cmd_auth.starttls, NOT_AUTHENTICATED, "RFC 3501 §6.2.1"),
    "AUTHENTICATE": Command(cmd_auth.authenticate, NOT_AUTHENTICATED, "RFC 3501 §6.2.2"),
    "LOGIN": Command(cmd_auth.login, NOT_AUTHENTICATED, "RFC 3501 §6.2.3"),
    "ENABLE": Command(cmd_any.enable, AUTHENTICATED, "RFC 5161 §3.1"),
    "NAMESPACE": Command(cmd_any.namespace, AUTHENTICATED, "RFC 2342 §5"),
    "SELECT": Command(cmd_mailbox.select, AUTHENTICATED, "RFC 3501 §6.3.1"),
    "EXAMINE": Command(cmd_mailbox.examine, AUTHENTICATED, "RFC 3501 §6.3.2"),
    "CREATE": Command(cmd_mailbox.create, AUTHENTICATED, "RFC 3501 §6.3.3"),
    "DELETE": Command(cmd_mailbox.delete, AUTHENTICATED, "RFC 3501 §6.3.4"),
    "RENAME": Command(cmd_mailbox.rename, AUTHENTICATED, "RFC 3501 §6.3.5"),
    "SUBSCRIBE": Command(cmd_mailbox.subscribe, AUTHENTICATED, "RFC 3501 §6.3.6"),
    "UNSUBSCRIBE": Command(cmd_mailbox.unsubscribe, AUTHENTICATED, "RFC 3501 §6.3.7"),
    "LIST": Command(cmd_mailbox.list_, AUTHENTICATED, "RFC 3501 §6.3.8, RFC 6154"),
    "LSUB": Command(cmd_mailbox.lsub, AUTHENTICATED, "RFC 3501 §6.3.9"),
    "STATUS": Command(cmd_mailbox.status, AUTHENTICATED, "RFC 3501 §6.3.10"),
    "APPEND": Command(cmd_mailbox.append, AUTHENTICATED, "RFC 3501 §6.3.11, RFC 4315 §3"),
    "IDLE": Command(cmd_mailbox.idle, AUTHENTICATED, "RFC 2177 §3"),
    "CHECK": Command(cmd_message.check, IN_SELECTED, "RFC 3501 §6.4.1"),
    "CLOSE": Command(cmd_message.close, IN_SELECTED, "RFC 3501 §6.4.2", refresh=False),  # no EXPUNGE responses
    "UNSELECT": Command(cmd_message.unselect, IN_SELECTED, "RFC 3691 §2", refresh=False),
    "EXPUNGE": Command(cmd_message.expunge, IN_SELECTED, "RFC 3501 §6.4.3, RFC 4315 §2.1", uid_ok=True),
    "SEARCH": Command(cmd_message.search, IN_SELECTED, "RFC 3501 §6.4.4", uid_ok=True, expunge_ok=False),
    "FETCH": Command(cmd_message.fetch, IN_SELECTED, "RFC 3501 §6.4.5", uid_ok=True, expunge_ok=False),
    "STORE": Command(cmd_message.store, IN_SELECTED, "RFC 3501 §6.4.6", uid_ok=True, expunge_ok=False),
    "COPY": Command(cmd_message.copy, IN_SELECTED, "RFC 3501 §6.4.7, RFC 4315 §3", uid_ok=True),
    "MOVE": Command(cmd_message.move, IN_SELECTED, "RFC 6851 §3", uid_ok=True),
}
