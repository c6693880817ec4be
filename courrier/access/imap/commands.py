"""The IMAP command table, in the row shape every protocol uses (courrier/net/commands.py): verb → handler, the
states it is valid in (RFC 3501 §3, §6; checked once, at dispatch, from the row), and three IMAP flags:
- ``uid``: a UID form exists (§6.4.8);
- ``no_expunge``: EXPUNGE responses may not follow it (§7.4.1: not during FETCH, STORE, SEARCH);
- ``no_refresh``: the selected view is not brought up to date before it runs (commands that leave the mailbox).
"""

from __future__ import annotations

from courrier.access.imap import cmd_any, cmd_auth, cmd_list, cmd_mailbox, cmd_message, cmd_quota, cmd_sort
from courrier.access.imap.state import AUTH, LOGOUT, NOT_AUTH, SELECTED
from courrier.net.commands import Command, table

STATES = (NOT_AUTH, AUTH, SELECTED, LOGOUT)  # RFC 3501 §3; nothing is valid in LOGOUT: the session ends
FLAGS = ("uid", "no_expunge", "no_refresh")
ANY = frozenset({NOT_AUTH, AUTH, SELECTED})
NOT_AUTHENTICATED = frozenset({NOT_AUTH})
AUTHENTICATED = frozenset({AUTH, SELECTED})
IN_SELECTED = frozenset({SELECTED})
UID = frozenset({"uid"})
UID_NO_EXPUNGE = frozenset({"uid", "no_expunge"})

COMMANDS: dict[str, Command[str]] = table(
    (
        Command("CAPABILITY", cmd_any.capability, ANY, "RFC 3501 §6.1.1"),
        Command("NOOP", cmd_any.noop, ANY, "RFC 3501 §6.1.2"),
        Command("LOGOUT", cmd_any.logout, ANY, "RFC 3501 §6.1.3"),
        Command("ID", cmd_any.id_, ANY, "RFC 2971 §3.1"),
        Command("STARTTLS", cmd_auth.starttls, NOT_AUTHENTICATED, "RFC 3501 §6.2.1"),
        Command("AUTHENTICATE", cmd_auth.authenticate, NOT_AUTHENTICATED, "RFC 3501 §6.2.2"),
        Command("LOGIN", cmd_auth.login, NOT_AUTHENTICATED, "RFC 3501 §6.2.3"),
        Command("ENABLE", cmd_any.enable, AUTHENTICATED, "RFC 5161 §3.1"),
        Command("NAMESPACE", cmd_any.namespace, AUTHENTICATED, "RFC 2342 §5"),
        Command("SELECT", cmd_mailbox.select, AUTHENTICATED, "RFC 3501 §6.3.1"),
        Command("EXAMINE", cmd_mailbox.examine, AUTHENTICATED, "RFC 3501 §6.3.2"),
        Command("CREATE", cmd_mailbox.create, AUTHENTICATED, "RFC 3501 §6.3.3, RFC 6154 §3"),
        Command("DELETE", cmd_mailbox.delete, AUTHENTICATED, "RFC 3501 §6.3.4"),
        Command("RENAME", cmd_mailbox.rename, AUTHENTICATED, "RFC 3501 §6.3.5"),
        Command("SUBSCRIBE", cmd_mailbox.subscribe, AUTHENTICATED, "RFC 3501 §6.3.6"),
        Command("UNSUBSCRIBE", cmd_mailbox.unsubscribe, AUTHENTICATED, "RFC 3501 §6.3.7"),
        Command("LIST", cmd_list.list_, AUTHENTICATED, "RFC 3501 §6.3.8, RFC 5258 §3, RFC 6154 §3, RFC 5819 §2"),
        Command("LSUB", cmd_list.lsub, AUTHENTICATED, "RFC 3501 §6.3.9"),
        Command("STATUS", cmd_mailbox.status, AUTHENTICATED, "RFC 3501 §6.3.10"),
        Command("APPEND", cmd_mailbox.append, AUTHENTICATED, "RFC 3501 §6.3.11, RFC 4315 §3"),
        Command("IDLE", cmd_mailbox.idle, AUTHENTICATED, "RFC 2177 §3"),
        Command("GETQUOTA", cmd_quota.getquota, AUTHENTICATED, "RFC 9208 §4.2"),
        Command("GETQUOTAROOT", cmd_quota.getquotaroot, AUTHENTICATED, "RFC 9208 §4.3"),
        Command("SETQUOTA", cmd_quota.setquota, AUTHENTICATED, "RFC 9208 §4.4"),
        Command("CHECK", cmd_message.check, IN_SELECTED, "RFC 3501 §6.4.1"),
        # no EXPUNGE responses: the mailbox is being left
        Command("CLOSE", cmd_message.close, IN_SELECTED, "RFC 3501 §6.4.2", flags=frozenset({"no_refresh"})),
        Command("UNSELECT", cmd_message.unselect, IN_SELECTED, "RFC 3691 §2", flags=frozenset({"no_refresh"})),
        Command("EXPUNGE", cmd_message.expunge, IN_SELECTED, "RFC 3501 §6.4.3, RFC 4315 §2.1", flags=UID),
        Command("SEARCH", cmd_message.search, IN_SELECTED, "RFC 3501 §6.4.4, RFC 4731 §3.1", flags=UID_NO_EXPUNGE),
        Command("FETCH", cmd_message.fetch, IN_SELECTED, "RFC 3501 §6.4.5", flags=UID_NO_EXPUNGE),
        Command("STORE", cmd_message.store, IN_SELECTED, "RFC 3501 §6.4.6", flags=UID_NO_EXPUNGE),
        Command("COPY", cmd_message.copy, IN_SELECTED, "RFC 3501 §6.4.7, RFC 4315 §3", flags=UID),
        Command("MOVE", cmd_message.move, IN_SELECTED, "RFC 6851 §3", flags=UID),
        # issue 16 (cmd_sort.py): ordered like SEARCH, so no EXPUNGE responses during them either
        Command("SORT", cmd_sort.sort, IN_SELECTED, "RFC 5256 §3, RFC 5267 §3", flags=UID_NO_EXPUNGE),
        Command("THREAD", cmd_sort.thread, IN_SELECTED, "RFC 5256 §4", flags=UID_NO_EXPUNGE),
    ),
    phases=STATES,
    flags=FLAGS,
)
