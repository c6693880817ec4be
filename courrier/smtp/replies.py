"""Every SMTP reply courrier sends, by name, with its enhanced status code (RFC 3463, RFC 5248 registry).

Handlers never write reply strings: they return one of these (or ``reply.with_text(...)``), so the wording and codes
can be read and reviewed in one place. The ``Reply`` type itself, and ``MailError`` that carries one through layers
that are not SMTP-aware (storage, delivery) back to the wire, are in the neutral core (``courrier.mail.reply``).
"""

from __future__ import annotations

import errno

from courrier.mail.reply import Reply

# ---- 2xx / 3xx ------------------------------------------------------------------------------------------
OK = Reply(250, "2.0.0", "OK")
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
QUEUED = Reply(250, "2.0.0", "OK queued")  # text completed with the queue id
RESET = Reply(250, "2.0.0", "Reset state")
NOOP = Reply(250, "2.0.0", "OK")
BYE = Reply(221, "2.0.0", "Bye")
VRFY_CANNOT = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")  # §3.5.3
HELP = Reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS AUTH")
START_INPUT = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
READY_TLS = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_CONTINUE = Reply(334, None, "")

# ---- 4xx ------------------------------------------------------------------------------------------------
SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, closing connection")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
TOO_MANY_IDLE_COMMANDS = Reply(421, "4.7.0", "Too many commands that move no mail, closing connection")
TIMEOUT = Reply(421, "4.4.2", "Timeout, closing connection")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections, try again later")
TOO_MANY_FROM_IP = Reply(421, "4.7.0", "Too many connections from your address, try again later")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")
NOT_ACCEPTING = Reply(451, "4.3.2", "Not accepting messages at the moment, try again later")
RELAY_UNAVAILABLE = Reply(451, "4.3.2", "Outbound relay is not available yet, try again later")
INSUFFICIENT_STORAGE = Reply(452, "4.3.1", "Insufficient system storage, try again later")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
AUTH_THROTTLED = Reply(454, "4.7.0", "Too many authentication failures, try again later")
TLS_UNAVAILABLE = Reply(454, "4.7.0", "TLS not available")
AUTH_TEMPFAIL = Reply(454, "4.7.0", "Temporary authentication failure")
TEMPFAIL_BY_ADDRESS = Reply(451, "4.3.0", "Temporary failure requested by the recipient address")

# ---- 5xx ------------------------------------------------------------------------------------------------
SYNTAX_ERROR = Reply(500, "5.5.2", "Syntax error, command unrecognized")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
HTTP_ON_SMTP = Reply(502, "5.5.1", "This is an SMTP server, not an HTTP server")
PARAM_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
BAD_SENDER_SYNTAX = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX = Reply(501, "5.1.3", "Bad recipient address syntax")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
PARAM_NOT_IMPLEMENTED = Reply(555, "5.5.4", "Parameter not recognized or not implemented")
AUTH_MECH_UNSUPPORTED = Reply(504, "5.5.4", "Unrecognized authentication mechanism")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
MUST_STARTTLS = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
ENCRYPTION_REQUIRED = Reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
AUTH_CANCELLED = Reply(501, "5.7.0", "Authentication cancelled")
NO_SUCH_USER = Reply(550, "5.1.1", "No such user here")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address not owned by the authenticated user")
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full: over its storage quota")  # RFC 3463 §3.3 X.2.2
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
UTF8_REQUIRED = Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
EIGHTBIT_REQUIRED = Reply(554, "5.6.1", "8-bit data requires BODY=8BITMIME")
BAD_MESSAGE = Reply(550, "5.6.0", "Message content rejected")
POLICY_REJECT = Reply(550, "5.7.1", "Rejected by policy")
PERMFAIL_BY_ADDRESS = Reply(550, "5.1.1", "Permanent failure requested by the recipient address")
LOOP_DETECTED = Reply(554, "5.4.6", "Too many Received headers: mail loop detected")
BARE_LF = Reply(500, "5.5.2", "Bare LF in command line")
TLS_ALREADY = Reply(503, "5.5.1", "TLS already active")
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "Already authenticated")


# ---- storage failures -----------------------------------------------------------------------------------
OUT_OF_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})  # the disk or the user's quota is full


def out_of_space(e: OSError) -> bool:
    """True when ``e`` says the storage is full (ENOSPC, EDQUOT): a condition that passes when space is freed."""
    return e.errno in OUT_OF_SPACE_ERRNOS


def storage_failure(e: OSError) -> Reply:
    """The reply for a message that could not be stored: 452 4.3.1 when the disk or quota is full (RFC 3463 §3.4
    "mail system full", RFC 5321 §4.2.2 452), else 451 4.3.0 (a local error). Both are temporary: the client keeps
    the message and tries again, so nothing is lost while an operator frees space or fixes the disk."""
    return INSUFFICIENT_STORAGE if out_of_space(e) else LOCAL_ERROR
