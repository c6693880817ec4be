"""Every POP3 reply the server sends, named (RFC 1939 §3: "+OK"/"-ERR"; RFC 2449 §8 and RFC 3206 response codes)."""

from __future__ import annotations

GREETING = "+OK courrier POP3 ready"
OK = "+OK"
BYE = "+OK bye"
CAPA = "+OK capability list follows"
STLS_GO = "+OK begin TLS negotiation"
USER_OK = "+OK send PASS"
LOGGED_IN = "+OK logged in"
DELETED = "+OK message deleted"
RESET = "+OK maildrop reset"
NOOP = "+OK"
LIST_FOLLOWS = "+OK scan listing follows"
UIDL_FOLLOWS = "+OK unique-id listing follows"
MSG_FOLLOWS = "+OK message follows"

UNKNOWN = "-ERR unknown command"
BAD_STATE = "-ERR command not valid in this state"
SYNTAX = "-ERR syntax error"
LINE_TOO_LONG = "-ERR line too long"
NO_SUCH_MSG = "-ERR no such message"
MSG_DELETED = "-ERR message is deleted"
TLS_ACTIVE = "-ERR TLS already active"
TLS_UNAVAILABLE = "-ERR TLS not available"
USER_FIRST = "-ERR USER first"
AUTH_FAILED = "-ERR [AUTH] authentication failed"  # RFC 3206 §4
AUTHZ_FAILED = "-ERR [AUTH] may not act as another user"  # RFC 4616 §2 authorization identity
PLAINTEXT_DISABLED = "-ERR [AUTH] plain-text login requires TLS (use STLS)"  # RFC 2595 §2.1
TOO_MANY_FAILURES = "-ERR [SYS/TEMP] too many authentication failures, try later"  # RFC 3206 §4
IN_USE = "-ERR [IN-USE] maildrop is locked by another session"  # RFC 2449 §8.1.1
UNSUPPORTED_MECH = "-ERR unsupported SASL mechanism"
AUTH_CANCELLED = "-ERR authentication cancelled"
STORAGE_ERROR = "-ERR [SYS/TEMP] mailbox unavailable"
INTERNAL_ERROR = "-ERR [SYS/TEMP] internal error"
TIMEOUT = "-ERR idle timeout"
SHUTDOWN = "-ERR [SYS/TEMP] server shutting down"
TOO_MANY_ERRORS = "-ERR too many errors"
