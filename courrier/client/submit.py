"""Opening a ready-to-send SMTP session (connect, EHLO, STARTTLS or implicit TLS, AUTH) and sending one message.

Security defaults: a certificate is verified against the system's trust store, except on loopback, where courrier's
own self-signed pair is the norm and no one can sit in the middle (``insecure=True`` skips it elsewhere too); TLS
1.2 or later; a password is never sent in clear text to a server that is not on loopback.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from courrier.client.smtpclient import ClientError, SMTPClient, Trace, Transaction

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class ServerOptions:
    """Where and how to connect: the ``--server``, ``--starttls``/``--tls``, ``--user`` options of ``courrier send``."""

    host: str
    port: int
    security: Security = "none"
    user: str | None = None
    password: str | None = None
    helo: str | None = None
    insecure: bool = False
    timeout: float = 30.0
    data_timeout: float = 600.0

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def describe(self) -> str:
        hp = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return hp + {"none": "", "starttls": " (STARTTLS)", "tls": " (TLS)"}[self.security]


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def helo_name() -> str:
    """This machine's name for EHLO (RFC 5321 §4.1.1.1); no DNS lookup (``getfqdn`` may block for seconds)."""
    name = socket.gethostname()
    return name if name and all(c.isalnum() or c in "-." for c in name) else "localhost"


def client_context(opts: ServerOptions) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996
    if opts.insecure or opts.loopback:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def open_session(opts: ServerOptions, trace: Trace | None = None) -> SMTPClient:
    """A connection that has said EHLO, is encrypted if asked, and authenticated if credentials were given."""
    ctx = client_context(opts) if opts.security != "none" else None
    c = await SMTPClient.connect(opts.host, opts.port, implicit_tls=ctx if opts.security == "tls" else None,
                                 timeout=opts.timeout, data_timeout=opts.data_timeout, trace=trace)
    try:
        name = opts.helo or helo_name()
        await c.ehlo(name)
        if opts.security == "starttls":
            assert ctx is not None
            await c.starttls(ctx)
            await c.ehlo(name)  # RFC 3207 §4.2: forget what was learnt before TLS
        if opts.user is not None:
            if c.tls is None and not opts.loopback:
                raise ClientError(f"refusing to send a password in clear text to {opts.host}: "
                                  "use --starttls or --tls")
            await c.auth(opts.user, opts.password or "")
    except BaseException:
        await c.close()
        raise
    return c


async def submit(opts: ServerOptions, sender: str, recipients: Sequence[str], data: bytes,
                 trace: Trace | None = None) -> Transaction:
    """One message, one connection: open, send, QUIT. Raises ClientError/SMTPReplyError when it cannot be sent."""
    c = await open_session(opts, trace)
    try:
        tx = await c.send(sender, recipients, data)
    except BaseException:
        await c.close()
        raise
    await c.quit()
    return tx
