"""SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login): the one decoder behind SMTP AUTH (RFC 4954),
IMAP AUTHENTICATE (RFC 3501 §6.2.2), POP3 AUTH (RFC 5034) and, later, ManageSieve AUTHENTICATE (RFC 5804).

Each protocol frames the exchange its own way (``334``, ``+``), so it hands :func:`exchange` a function ``ask`` that
sends one base64 challenge and returns the client's next line; everything else — ``*`` to cancel, ``=`` for an
empty initial response, base64, UTF-8, the NUL-separated fields, the authorization-identity rule and the length
bounds — is decided here once. Errors are typed so that each protocol maps them to its own reply:
:class:`Malformed` (counts as a failed login), :class:`AuthzDenied` (counts too), :class:`Cancelled` (does not).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# RFC 4616 §2: a server MUST accept authcid, authzid and passwd of up to 255 octets; we allow more (long
# generated passwords) but bound each field, and the encoded response, so decoding never holds much.
MAX_FIELD = 1024
MAX_RESPONSE = 4 * ((3 * MAX_FIELD + 2 + 2) // 3)  # base64 of three full fields and two NULs

LOGIN_USERNAME = base64.b64encode(b"Username:").decode()  # draft-murchison-sasl-login §2.1
LOGIN_PASSWORD = base64.b64encode(b"Password:").decode()

Ask = Callable[[str], Awaitable["str | None"]]
"""Sends one base64 challenge and returns the client's response line, or None when the connection is gone."""


class SASLError(Exception):
    """A SASL exchange that yields no credentials; ``str(e)`` is a short reason fit for a reply."""


class Malformed(SASLError):
    """Not valid base64, not UTF-8, wrong number of NUL-separated fields, empty identity, or too long."""


class AuthzDenied(SASLError):
    """RFC 4616 §2: the client asked to act as another identity, which we never authorize."""


class Cancelled(SASLError):
    """The client sent ``*`` (RFC 4954 §4, RFC 3501 §6.2.2, RFC 5034 §4) or went away mid-exchange."""


@dataclass(frozen=True)
class Credentials:
    """What the client claims: the authentication identity and its password (never logged)."""

    user: str
    password: str
    authzid: str = ""

    def __repr__(self) -> str:  # a stray log or traceback must not print the password
        return f"Credentials(user={self.user!r}, password=<hidden>, authzid={self.authzid!r})"


def decode_response(line: str | bytes) -> bytes:
    """One base64 client response (RFC 4648 §4, no whitespace inside); ``=`` alone is the empty response
    (RFC 4954 §4, RFC 4959 §3). Raises Malformed, or Cancelled for ``*``."""
    text = line.decode("ascii", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if text == "*":
        raise Cancelled("authentication cancelled")
    if len(text) > MAX_RESPONSE:
        raise Malformed("SASL response too long")
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("invalid base64 in SASL response") from None


def _field(raw: bytes, what: str) -> str:
    if len(raw) > MAX_FIELD:
        raise Malformed(f"SASL {what} too long")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"SASL {what} is not UTF-8") from None


def check_authzid(authzid: str, user: str) -> None:
    """RFC 4616 §2: an authorization identity other than the user's own (case aside) needs a right nobody has."""
    if authzid and authzid.lower() != user.lower():
        raise AuthzDenied("authorization identity differs from the authenticated user")


def decode_plain(raw: bytes) -> Credentials:
    """RFC 4616 §2: ``[authzid] NUL authcid NUL passwd``. The authcid must not be empty."""
    fields = raw.split(b"\0")
    if len(fields) != 3:
        raise Malformed("malformed PLAIN response (expected authzid NUL authcid NUL password)")
    authzid, user, password = (_field(f, w) for f, w in zip(fields, ("authzid", "authcid", "password"), strict=True))
    if not user:
        raise Malformed("empty authentication identity")
    check_authzid(authzid, user)
    return Credentials(user, password, authzid)


def decode_login_field(line: str | bytes, what: str) -> str:
    """One LOGIN step: a base64 user name or password."""
    return _field(decode_response(line), what)


async def exchange(mechanism: str, initial: str | None, ask: Ask) -> Credentials:
    """Runs one PLAIN or LOGIN exchange; ``initial`` is the initial response (RFC 4954 §4, RFC 4959), if any.

    Raises Malformed, AuthzDenied or Cancelled; ValueError for a mechanism other than PLAIN and LOGIN (the
    protocol checks what it offers before calling)."""

    async def response(challenge: str) -> str:
        line = await ask(challenge)
        if line is None:
            raise Cancelled("connection closed during authentication")
        return line

    mech = mechanism.upper()
    if mech == "PLAIN":
        return decode_plain(decode_response(initial if initial is not None else await response("")))
    if mech == "LOGIN":
        user = decode_login_field(initial if initial is not None else await response(LOGIN_USERNAME), "user name")
        if not user:
            raise Malformed("empty user name")
        password = decode_login_field(await response(LOGIN_PASSWORD), "password")
        return Credentials(user, password)
    raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
