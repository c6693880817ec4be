"""Not-authenticated state (RFC 3501 §6.2): STARTTLS, LOGIN, AUTHENTICATE PLAIN (RFC 4616, SASL-IR RFC 4959)."""

from __future__ import annotations

import base64
import binascii
import sqlite3
from typing import TYPE_CHECKING

from courrier import log
from courrier.access.imap.parser import ParseError, Token, astring, atom
from courrier.mailbox import maildir

if TYPE_CHECKING:
    from courrier.access.imap.session import Session


async def starttls(s: Session, tag: str, args: list[Token], uid: bool) -> str | None:
    """RFC 3501 §6.2.1: OK, then the TLS handshake; commands pipelined before it are discarded, capabilities reset."""
    from courrier.access.imap.session import TaggedResult

    if s.tls or s.server.tls_context is None:
        raise TaggedResult("BAD", "TLS already active" if s.tls else "TLS not available")
    s.send(f"{tag} OK begin TLS negotiation now")
    await s.writer.drain()
    s.reader._buffer.clear()  # type: ignore[attr-defined]  # no plaintext command injection (CVE-2011-0411)
    await s.writer.start_tls(s.server.tls_context, ssl_handshake_timeout=30)
    s.tls = True
    return None  # the tagged reply went out before the handshake


async def _login(s: Session, tag: str, user: str, password: str) -> str:
    from courrier.access.imap.session import AUTH, no

    auth = s.server.auth
    if auth.blocked(s.peer_ip):
        raise no("[UNAVAILABLE] too many authentication failures, try later")
    try:
        root = await auth.login(user, password, s.peer_ip, "imap")
        if root is not None:
            # capture mode: the capture Maildir is written by the capture store; we only make sure it exists.
            # Otherwise INBOX and the default folders, subscribed, for an account made before they existed.
            await s.store.run(maildir.ensure if root.capture else s.store.provision, root.root)
    except (OSError, sqlite3.Error) as e:
        # the accounts database or the mail disk fails: say so (RFC 5530 §3), never "wrong password" or SERVERBUG
        log.event("imap.login_unavailable", level="error", user=user, ip=s.peer_ip, error=str(e)[:200])
        raise no("[UNAVAILABLE] mail storage unavailable, try again later") from None
    if root is None:
        raise no("[AUTHENTICATIONFAILED] authentication failed")  # RFC 5530 §3
    s.root = root
    s.state = AUTH
    return f"[CAPABILITY {' '.join(s.capabilities())}] logged in"


async def login(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.2.3: refused while LOGINDISABLED (no TLS, not trusted loopback)."""
    from courrier.access.imap.session import no

    if len(args) != 2:
        raise ParseError("usage: LOGIN user password")
    if not s.server.auth.plaintext_allowed(s.tls, s.peer_ip):
        raise no("[PRIVACYREQUIRED] LOGIN requires TLS (use STARTTLS)")
    return await _login(s, tag, astring(args[0], "user"), astring(args[1], "password"))


async def authenticate(s: Session, tag: str, args: list[Token], uid: bool) -> str:
    """RFC 3501 §6.2.2 with PLAIN (RFC 4616); the initial response may be on the command line (RFC 4959)."""
    from courrier.access.imap.session import TaggedResult, no

    if not 1 <= len(args) <= 2:
        raise ParseError("usage: AUTHENTICATE mechanism [initial-response]")
    if atom(args[0], "mechanism").upper() != "PLAIN":
        raise no("unsupported authentication mechanism")
    if not s.server.auth.plaintext_allowed(s.tls, s.peer_ip):
        raise no("[PRIVACYREQUIRED] authentication requires TLS (use STARTTLS)")
    if len(args) == 2:
        resp = astring(args[1], "initial response")
    else:
        s.send("+ ")
        await s.writer.drain()
        resp = (await s.readline()).decode("ascii", "replace")
    if resp.strip() == "*":
        raise TaggedResult("BAD", "authentication cancelled")  # RFC 3501 §6.2.2
    try:
        raw = base64.b64decode("" if resp.strip() == "=" else resp.strip(), validate=True)
        authz, authc, password = raw.decode("utf-8").split("\0")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TaggedResult("BAD", "invalid SASL PLAIN response") from None
    if authz and authz.lower() != authc.lower():  # RFC 4616 §2: acting as another identity needs authorization
        raise no("[AUTHORIZATIONFAILED] may not act as another user")  # RFC 5530 §3
    return await _login(s, tag, authc, password)
