"""``POST /api/v1/message/{ID}/release``: hand a captured message to the outbound path.

The App's outbound MTA (``App.relay_outbound(session, env, msg, rcpts) -> Reply``) queues the message durably,
DKIM-signs it and delivers it — through ``[delivery] smarthost`` when one is configured, by MX otherwise — with
retries and bounces: release is just another submission, from a trusted local client. An App without an outbound
path refuses release (as Mailpit does when no relay is configured).
"""

from __future__ import annotations

import io
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
    if not callable(outbound):
        return None, ""
    smarthost = app.cfg.delivery.smarthost
    return _via_app(app), f"outbound queue via smarthost {smarthost}" if smarthost else "outbound queue (MX)"


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
