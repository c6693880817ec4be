"""The policy side of the SMTP server: what each role decides, kept apart from the protocol engine.

The engine (``protocol.py``) owns RFC 5321 — syntax, order, limits, timeouts. A Policy owns the decisions — who may
connect, authenticate, send from which address, to which recipient, and what happens to an accepted message. The MX
role, the submission role and capture mode are three subclasses of this one interface (aiosmtpd's handler idea); they
live above the engine, in ``courrier.roles``, so that the engine imports no accounts, delivery, queue or store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from courrier.smtp import replies as R
from courrier.smtp.session import Session


class Disconnect(Exception):
    """Raised by a policy hook to drop the connection at once, without a reply (capture mode's disconnect…@)."""


class AuthBackend(Protocol):
    async def authenticate(self, session: Session, username: str, password: str) -> Reply: ...


class Policy:
    """Default answers; subclasses override what their role decides."""

    name = "base"

    def require_tls(self, session: Session) -> bool:
        """True: commands not flagged "allowed before STARTTLS" answer 530 5.7.0 until TLS is on."""
        return False

    def auth_mechanisms(self, session: Session) -> list[str]:
        """The SASL mechanisms to advertise now (RFC 4954 §3); empty: no AUTH."""
        return []

    def auth_needs_tls(self, session: Session) -> bool:
        """True when AUTH must wait for TLS (538 5.7.11)."""
        return False

    def require_auth(self, session: Session) -> bool:
        """True: MAIL before AUTH answers 530 5.7.0 (RFC 4954 §6)."""
        return False

    async def check_connect(self, session: Session) -> Reply | None:
        return None

    async def check_auth(self, session: Session, mechanism: str) -> Reply | None:
        """A refusal of this AUTH before any credentials are read (capture mode's chaos trigger), or None."""
        return None

    async def authenticate(self, session: Session, username: str, password: str) -> Reply:
        return R.AUTH_MECH_UNSUPPORTED

    async def check_mail(self, session: Session, env: Envelope) -> Reply:
        return R.SENDER_OK

    async def check_rcpt(self, session: Session, env: Envelope, rcpt: Recipient) -> Reply | None:
        """A reply, or None for "no answer at all" (capture mode's timeout…@ address)."""
        return R.RECIPIENT_OK

    async def deliver(self, session: Session, env: Envelope, msg: ReceivedMessage) -> Reply:
        """Called at the end of DATA/BDAT LAST. Returns 250 only once the message is on stable storage."""
        return R.LOCAL_ERROR

    # The inspector's "pause incoming" switch, attached by the app (capture mode keeps its own in the store).
    pause_switch: Callable[[], bool] | None = None

    def paused(self) -> bool:
        """True while incoming mail is paused (the inspector's switch): MAIL answers 451 4.3.2."""
        return self.pause_switch() if self.pause_switch is not None else False
