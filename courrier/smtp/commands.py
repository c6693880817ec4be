"""The SMTP command table: one row per verb, with the rules that belong to the verb (Postfix's smtpd table idea).

Columns:
- ``before_tls``: allowed while the policy still requires STARTTLS (RFC 3207 §4; RFC 6409 §4.3 for submission).
- ``ends_group``: must be the last command of a pipelined group (RFC 2920 §3.1): replies are flushed after it and
  bytes the client sent after it are not read ahead (STARTTLS: RFC 3207 §4.2 forbids acting on them; DATA: the
  payload follows the 354).
- ``junk``: counts toward the session's budget of commands that move no mail forward (``[limits]
  max_junk_commands``, Postfix's smtpd_junk_command_limit): EHLO, HELO, NOOP, RSET, VRFY, EXPN, HELP — and unknown
  verbs and empty non-LAST BDAT chunks, counted in the engine. Each resets the idle timer, so without the budget a
  client could hold a connection slot forever; the budget is given back only when a message is accepted.
- ``needs_arg``: the verb takes an argument (syntax error without one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    verb: str
    handler: str
    before_tls: bool = False
    ends_group: bool = False
    junk: bool = False
    needs_arg: bool = False


COMMANDS: dict[str, Command] = {
    c.verb: c
    for c in (
        Command("EHLO", "smtp_ehlo", before_tls=True, ends_group=True, junk=True, needs_arg=True),  # §4.1.1.1
        Command("HELO", "smtp_helo", before_tls=True, ends_group=True, junk=True, needs_arg=True),  # §4.1.1.1
        Command("STARTTLS", "smtp_starttls", before_tls=True, ends_group=True),  # RFC 3207 §4
        Command("AUTH", "smtp_auth", ends_group=True, needs_arg=True),  # RFC 4954 §4
        Command("MAIL", "smtp_mail", needs_arg=True),  # RFC 5321 §4.1.1.2
        Command("RCPT", "smtp_rcpt", needs_arg=True),  # RFC 5321 §4.1.1.3
        Command("DATA", "smtp_data", ends_group=True),  # RFC 5321 §4.1.1.4
        Command("BDAT", "smtp_bdat", needs_arg=True),  # RFC 3030 §2
        Command("RSET", "smtp_rset", before_tls=True, junk=True),  # RFC 5321 §4.1.1.5
        Command("NOOP", "smtp_noop", before_tls=True, junk=True),  # RFC 5321 §4.1.1.9
        Command("VRFY", "smtp_vrfy", junk=True),  # RFC 5321 §4.1.1.6, §3.5.3 (252)
        Command("EXPN", "smtp_expn", junk=True),  # RFC 5321 §4.1.1.7 (not offered)
        Command("HELP", "smtp_help", before_tls=True, junk=True),  # RFC 5321 §4.1.1.8
        Command("QUIT", "smtp_quit", before_tls=True, ends_group=True),  # RFC 5321 §4.1.1.10
    )
}

# A client speaking HTTP to the SMTP port (cross-protocol attacks, misconfigured proxies): answer 502 and close,
# as chasquid and Postfix do.
HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "TRACE"})
