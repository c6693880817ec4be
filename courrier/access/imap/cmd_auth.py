"""Not-authenticated state (RFC 3501 §6.2): STARTTLS, LOGIN, AUTHENTICATE PLAIN (RFC 4616, SASL-IR RFC 4959).

SASL is decoded by courrier.auth.sasl and every login goes through the shared limiter: a refused one answers
``NO [UNAVAILABLE]`` (RFC 5530 §3: "temporary failure … try again later"), never ``[AUTHENTICATIONFAILED]``,
which says a password was checked and is wrong.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from courrier import log
from courrier.access.imap.parser import ParseError, Token, astring, atom
from courrier.access.imap.state import AUTH, TaggedResult, no
from courrier.auth import Limited, sasl

if TYPE_CHECKING:
    from courrier.access.imap.session import Session


async def starttls(s: Session, tag: str, args: list[Token], uid: bool) -> str | None:
    """RFC 3501 §6.2.1: OK, then the TLS handshake; commands pipelined before it are discarded, capabilities reset."""
    if s.tls or s.server.tls_context is None:
        raise TaggedResult("BAD", "TLS already active" if s.tls else "TLS not available")
    s.send(f"{tag} OK begin TLS negotiation now")
    await s.writer.drain()
    s.reader._buffer.clear()  # type: ignore[attr-defined]  # no plaintext command injection (CVE-2011-0411)
    await s.writer.start_tls(s.server.tls_context, ssl_handshake_timeout=30)
    s.tls = True
    return None  # the tagged reply went out before the handshake


LIMITED = "[UNAVAILABLE] too many authentication failures, try later"  # RFC 5530 §3


async def _login(s: Session, tag: str, user: str, password: str) -> str:
    try:
        root = await s.server.auth.login(user, password, s.peer_ip, "imap")
        if root is not None:
            # capture mode: the capture Maildir is written by the capture store; we only make sure it exists.
            # Otherwise INBOX and the default folders, subscribed, for an account made before they existed.
            await s.store.run(s.store.ensure_root if root.capture else s.store.provision, root.root)
    except (OSError, sqlite3.Error) as e:
        # the accounts database or the mail disk fails: say so (RFC 5530 §3), never "wrong password" or SERVERBUG
        log.event("imap.login_unavailable", level="error", user=user, ip=s.peer_ip, error=str(e)[:200])
        raise no("[UNAVAILABLE] mail storage unavailable, try again later") from None
    except Limited:
        raise no(LIMITED) from None
    if root is None:
        raise no("[AUTHENTICATIONFAILED] authentication failed")  # RFC 5530 §3
    s.root = root
    s.state = AUTH
    return f"[CAPABILITY {' '.join(s.capabilities())}] logged in"


async def login(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.2.3: refused while LOGINDISABLED (no TLS, not trusted loopback)."""
    if len(args) != 2:
        raise ParseError("usage: LOGIN user password")
    if not s.server.auth.plaintext_allowed(s.tls, s.peer_ip):
        raise no("[PRIVACYREQUIRED] LOGIN requires TLS (use STARTTLS)")
    return await _login(s, tag, astring(args[0], "user"), astring(args[1], "password"))


async def authenticate(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.2.2 with PLAIN (RFC 4616); the initial response may be on the command line (RFC 4959)."""
    if not 1 <= len(args) <= 2:
        raise ParseError("usage: AUTHENTICATE mechanism [initial-response]")
    if atom(args[0], "mechanism").upper() != "PLAIN":
        raise no("unsupported authentication mechanism")
    auth = s.server.auth
    if not auth.plaintext_allowed(s.tls, s.peer_ip):
        raise no("[PRIVACYREQUIRED] authentication requires TLS (use STARTTLS)")
    if auth.blocked(s.peer_ip, "imap"):  # before reading credentials we would not check
        raise no(LIMITED)

    async def ask(challenge: str) -> str | None:
        s.send(f"+ {challenge}")
        await s.writer.drain()
        return (await s.readline()).decode("ascii", "replace")

    initial = astring(args[1], "initial response") if len(args) == 2 else None
    try:
        creds = await sasl.exchange("PLAIN", initial, ask)
    except sasl.Cancelled:
        raise TaggedResult("BAD", "authentication cancelled") from None  # RFC 3501 §6.2.2
    except sasl.AuthzDenied as e:
        auth.malformed(s.peer_ip, "imap", str(e))
        raise no("[AUTHORIZATIONFAILED] may not act as another user") from None  # RFC 5530 §3
    except sasl.Malformed as e:
        auth.malformed(s.peer_ip, "imap", str(e))
        raise TaggedResult("BAD", f"invalid SASL PLAIN response: {e}") from None
    return await _login(s, tag, creds.user, creds.password)
