"""``POST /api/v1/message/{ID}/release``: hand a captured message to the outbound path.

Preferred: the App's outbound MTA (``App.relay_outbound(session, env, msg, rcpts) -> Reply``), which queues the
message durably, DKIM-signs it and delivers by MX or smarthost with retries — release is then just another
submission from a trusted local client. When the App has no outbound path, the configured
``[delivery] smarthost`` is used directly through aiosmtplib. With neither, release is refused (as Mailpit does when
no relay is configured).
"""

from __future__ import annotations

import io
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from courrier import log

if TYPE_CHECKING:
    from courrier.app import App

Relay = Callable[[str, str, list[str], bytes], Awaitable[None]]


class RelayError(Exception):
    """Release failed: the message says why (the reply of the outbound path or of the smarthost)."""


def to_crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_relay(app: App) -> tuple[Relay | None, str]:
    outbound = getattr(app, "relay_outbound", None)
    if callable(outbound):
        return _via_app(app), "outbound queue"
    smarthost = app.cfg.delivery.smarthost
    if smarthost is not None:
        return _via_smarthost(app), f"smarthost {smarthost}"
    return None, ""


def _via_app(app: App) -> Relay:
    from courrier.smtp.address import parse_path
    from courrier.smtp.policy import ReceivedMessage
    from courrier.smtp.session import Envelope, Recipient, Session

    async def relay(msg_id: str, mail_from: str, rcpts: list[str], raw: bytes) -> None:
        data = to_crlf(raw)
        session = Session(peer_ip="127.0.0.1", peer_port=0, local_ip="127.0.0.1", local_port=0,
                          listener="release", hostname=app.cfg.hostname, helo=app.cfg.hostname, esmtp=True,
                          trust_loopback=True)
        env = Envelope(mail_from=parse_path(f"<{mail_from}>", allow_null=True, utf8=True), smtputf8=True)
        env.rcpts = [Recipient(parse_path(f"<{r}>", allow_null=False, utf8=True)) for r in rcpts]
        msg = ReceivedMessage(io.BytesIO(data), len(data))
        reply = await app.relay_outbound(session, env, msg, env.rcpts)  # type: ignore[attr-defined]
        log.event("http.release", id=msg_id, qid=env.queue_id, rcpts=len(rcpts), reply=str(reply))
        if not getattr(reply, "ok", False):
            raise RelayError(str(reply))

    return relay


def _via_smarthost(app: App) -> Relay:
    import aiosmtplib

    d = app.cfg.delivery

    async def relay(msg_id: str, mail_from: str, rcpts: list[str], raw: bytes) -> None:
        assert d.smarthost is not None
        ctx = ssl.create_default_context()  # opportunistic STARTTLS (RFC 7435): encrypt, do not insist on a CA
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            errors, reply = await aiosmtplib.send(
                to_crlf(raw), sender=mail_from, recipients=rcpts, hostname=d.smarthost.host,
                port=d.smarthost.port, username=d.smarthost_user, password=d.smarthost_password,
                start_tls=None, tls_context=ctx, timeout=d.connect_timeout, local_hostname=app.cfg.hostname,
            )
        except (aiosmtplib.SMTPException, OSError) as e:
            raise RelayError(f"smarthost {d.smarthost}: {e}") from None
        log.event("http.release", id=msg_id, smarthost=str(d.smarthost), rcpts=len(rcpts), reply=reply)

    return relay
