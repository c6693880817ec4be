"""The SMTP command table: one row per verb, with the rules that belong to the verb (Postfix's smtpd table idea), in
the row shape every protocol uses (courrier/net/commands.py). The engine checks the columns once, at dispatch, in
this order: ``junk``, ``before_tls``, ``needs_arg``/``no_arg``, then the phase; handlers start where the rules end.

Columns:
- ``phases``: where the verb is valid (``Phase``); elsewhere the row's refusal for that phase is sent — 503 5.5.1
  with the reason (RFC 5321 §4.1.4, §4.3.2), or 554 5.5.1 for DATA/BDAT after no valid recipient (§3.3).
- ``before_tls``: allowed while the policy still requires STARTTLS (RFC 3207 §4; RFC 6409 §4.3 for submission).
- ``ends_group``: must be the last command of a pipelined group (RFC 2920 §3.1, RFC 3207 §4.2, RFC 4954 §4): the
  parser reads nothing after it until it has run (STARTTLS: RFC 3207 §4.2 forbids acting on such bytes; DATA: the
  payload follows the 354), and its reply is sent at once, since the client waits for it.
- ``junk`` (flag): counts toward the session's budget of commands that move no mail forward (``[limits]
  max_junk_commands``, Postfix's smtpd_junk_command_limit): EHLO, HELO, NOOP, RSET, VRFY, EXPN, HELP — and unknown
  verbs and empty non-LAST BDAT chunks, counted in the engine. Each resets the idle timer, so without the budget a
  client could hold a connection slot forever; the budget is given back only when a message is accepted.
- ``needs_arg`` / ``no_arg``: the verb must have / must not have an argument (501 5.5.4 otherwise).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from courrier.net.commands import Command, table
from courrier.smtp import replies as R
from courrier.smtp.replies import Reply


class Phase(enum.Enum):
    """Where a session stands in RFC 5321's order of commands (§4.1.4, §3.3). The engine derives it from the
    session and the envelope each time it dispatches, so it can never disagree with them."""

    CONNECTED = "connected"  # greeted by us, no HELO/EHLO yet
    HELO = "helo"  # greeted by HELO: no service extensions (RFC 5321 §4.1.1.1)
    EHLO = "ehlo"  # greeted by EHLO, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet (§4.1.1.2)
    RCPT = "rcpt"  # at least one recipient accepted (§4.1.1.3)
    BDAT = "bdat"  # a BDAT transfer has begun: DATA and RCPT may not follow (RFC 3030 §2, §3)


ANY = frozenset(Phase)
GREETED = frozenset({Phase.HELO, Phase.EHLO})
UNGREETED_OR_IDLE = frozenset({Phase.CONNECTED, Phase.HELO, Phase.EHLO})
IN_TRANSACTION = frozenset({Phase.MAIL, Phase.RCPT, Phase.BDAT})
FLAGS = ("junk",)

SEND_HELO_FIRST = R.BAD_SEQUENCE.with_text("Send EHLO/HELO first")
SEND_EHLO_FIRST = R.BAD_SEQUENCE.with_text("Send EHLO first")
NEED_MAIL = R.BAD_SEQUENCE.with_text("Need MAIL command first")
NESTED_MAIL = R.BAD_SEQUENCE.with_text("Nested MAIL command")
AUTH_IN_TRANSACTION = R.BAD_SEQUENCE.with_text("AUTH not allowed during a mail transaction")  # RFC 4954 §4
RCPT_DURING_BDAT = R.BAD_SEQUENCE.with_text("RCPT not allowed during BDAT")
DATA_AFTER_BDAT = R.BAD_SEQUENCE.with_text("DATA not allowed after BDAT")  # RFC 3030 §3


def refuse(reply: Reply, phases: Iterable[Phase]) -> tuple[tuple[Phase, Reply], ...]:
    return tuple((p, reply) for p in phases)


JUNK = frozenset({"junk"})

COMMANDS: dict[str, Command[Phase]] = table(
    (
        Command("EHLO", "smtp_ehlo", ANY, "RFC 5321 §4.1.1.1; RFC 2920 §3.1", needs_arg=True, before_tls=True,
                ends_group=True, flags=JUNK),
        Command("HELO", "smtp_helo", ANY, "RFC 5321 §4.1.1.1", needs_arg=True, before_tls=True, ends_group=True,
                flags=JUNK),
        Command("STARTTLS", "smtp_starttls", ANY, "RFC 3207 §4, §4.2", no_arg=True, before_tls=True,
                ends_group=True),
        Command("AUTH", "smtp_auth", frozenset({Phase.EHLO}), "RFC 4954 §4", needs_arg=True, ends_group=True,
                refusals=refuse(SEND_EHLO_FIRST, (Phase.CONNECTED, Phase.HELO))
                + refuse(AUTH_IN_TRANSACTION, IN_TRANSACTION)),
        Command("MAIL", "smtp_mail", GREETED, "RFC 5321 §4.1.1.2, §4.1.4", needs_arg=True,
                refusals=refuse(SEND_HELO_FIRST, (Phase.CONNECTED,)) + refuse(NESTED_MAIL, IN_TRANSACTION)),
        Command("RCPT", "smtp_rcpt", frozenset({Phase.MAIL, Phase.RCPT}), "RFC 5321 §4.1.1.3; RFC 3030 §2",
                needs_arg=True,
                refusals=refuse(NEED_MAIL, UNGREETED_OR_IDLE) + refuse(RCPT_DURING_BDAT, (Phase.BDAT,))),
        Command("DATA", "smtp_data", frozenset({Phase.RCPT}), "RFC 5321 §4.1.1.4, §3.3; RFC 3030 §3", no_arg=True,
                ends_group=True,
                refusals=refuse(NEED_MAIL, UNGREETED_OR_IDLE) + refuse(R.NO_VALID_RECIPIENTS, (Phase.MAIL,))
                + refuse(DATA_AFTER_BDAT, (Phase.BDAT,))),
        # the size and LAST are judged by the handler, which answers with the syntax (RFC 3030 §2)
        Command("BDAT", "smtp_bdat", frozenset({Phase.RCPT, Phase.BDAT}), "RFC 3030 §2, §3",
                refusals=refuse(NEED_MAIL, UNGREETED_OR_IDLE) + refuse(R.NO_VALID_RECIPIENTS, (Phase.MAIL,))),
        Command("RSET", "smtp_rset", ANY, "RFC 5321 §4.1.1.5", before_tls=True, flags=JUNK),
        Command("NOOP", "smtp_noop", ANY, "RFC 5321 §4.1.1.9; RFC 2920 §3.1", before_tls=True, ends_group=True,
                flags=JUNK),
        # 252, never disclose accounts (§3.5.3)
        Command("VRFY", "smtp_vrfy", ANY, "RFC 5321 §4.1.1.6, §3.5.3; RFC 2920 §3.1", needs_arg=True,
                ends_group=True, flags=JUNK),
        Command("EXPN", "smtp_expn", ANY, "RFC 5321 §4.1.1.7 (not offered); RFC 2920 §3.1", ends_group=True,
                flags=JUNK),
        Command("HELP", "smtp_help", ANY, "RFC 5321 §4.1.1.8", before_tls=True, flags=JUNK),
        Command("QUIT", "smtp_quit", ANY, "RFC 5321 §4.1.1.10; RFC 2920 §3.1", before_tls=True, ends_group=True),
    ),
    phases=Phase,
    flags=FLAGS,
)

# A client speaking HTTP to the SMTP port (cross-protocol attacks, misconfigured proxies): answer 502 and close,
# as chasquid and Postfix do.
HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "TRACE"})
