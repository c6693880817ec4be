"""CapturePolicy: the SMTP role of capture mode, over the same protocol engine as the MX and submission roles.

- Every recipient is accepted (RFC 5321 §4.1.1.3 leaves acceptance to the server); nothing is ever relayed.
- AUTH PLAIN/LOGIN (RFC 4954) succeeds with any credentials when ``[capture] accept_any_auth`` (the default); else
  the accounts decide, and AUTH waits for TLS except from a trusted loopback client (RFC 4954 §4 / §14).
- ``[capture] fail_by_address`` (mox's idea): the recipient's local part chooses a failure, at RCPT —
  ``tempfail…@`` → 451 4.3.0, ``permfail…@`` → 550 5.1.1, ``timeout…@`` → no answer at all (the client's timer
  fires; our idle timeout closes), ``disconnect…@`` → the connection is dropped without a reply.
- ``user+tag@`` is accepted as is and ``tag`` recorded as a tag of the message (RFC 5233 subaddressing).
- "Pause incoming": while ``store.paused``, MAIL answers 451 4.3.2 (the engine asks ``paused()``).
- Mailpit's chaos triggers (``[capture] chaos``, set through ``PUT /api/v1/chaos``; ``capture/chaos.py``): a random
  failure with the configured code at MAIL, at each RCPT, or at AUTH before the credentials are read — where
  Mailpit's ``internal/smtpd/smtpd.go`` rolls them.
- ``[capture] allowed_recipients`` (Mailpit's ``--smtp-allowed-recipients``, server/smtpd/smtpd.go
  ``handlerRcpt``): a recipient whose address the regex does not match gets 550 5.1.0; each refusal, like a
  fail_by_address failure, counts in ``store.rejected`` (``/api/v1/info`` ``SMTPRejected``).
"""

from __future__ import annotations

import re

from courrier.accounts import Accounts
from courrier.capture.api import CaptureBackend
from courrier.config import CaptureConfig
from courrier.mail.envelope import Envelope, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from courrier.smtp import replies as R
from courrier.smtp.policy import Disconnect, Policy
from courrier.smtp.session import Session

MECHANISMS = ["PLAIN", "LOGIN"]
NOT_ALLOWED = Reply(550, "5.1.0", "Requested action not taken: mailbox unavailable")  # Mailpit's words


def failure_for(local_part: str) -> str | None:
    """"tempfail", "permfail", "timeout" or "disconnect" when the local part asks for it, else None."""
    lp = local_part.lower()
    for kind in ("tempfail", "permfail", "timeout", "disconnect"):
        if lp.startswith(kind):
            return kind
    return None


class CapturePolicy(Policy):
    name = "capture"

    def __init__(self, *, store: CaptureBackend, cfg: CaptureConfig, accounts: Accounts | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.accounts = accounts
        self.allowed = re.compile(cfg.allowed_recipients) if cfg.allowed_recipients else None

    def _any_auth(self) -> bool:
        return self.cfg.accept_any_auth or self.accounts is None

    def auth_mechanisms(self, session: Session) -> list[str]:
        if self._any_auth() or session.tls is not None or session.trusted_local:
            return MECHANISMS
        return []

    def auth_needs_tls(self, session: Session) -> bool:
        return not self._any_auth() and session.tls is None and not session.trusted_local

    async def authenticate(self, session: Session, username: str, password: str) -> Reply:
        if self._any_auth():
            return R.AUTH_OK
        assert self.accounts is not None
        import asyncio
        account = await asyncio.get_running_loop().run_in_executor(None, self.accounts.verify, username, password)
        return R.AUTH_OK if account is not None else R.AUTH_FAILED

    async def check_auth(self, session: Session, mechanism: str) -> Reply | None:
        return self.store.chaos.roll("Authentication")

    async def check_mail(self, session: Session, env: Envelope) -> Reply:
        return self.store.chaos.roll("Sender") or R.SENDER_OK

    async def check_rcpt(self, session: Session, env: Envelope, rcpt: Recipient) -> Reply | None:
        failure = self.store.chaos.roll("Recipient")
        if failure is not None:
            return failure
        if self.allowed is not None and not self.allowed.search(str(rcpt.address)):
            self.store.rejected += 1
            return NOT_ALLOWED
        if self.cfg.fail_by_address:
            kind = failure_for(rcpt.address.local)
            if kind == "tempfail":
                self.store.rejected += 1
                return R.TEMPFAIL_BY_ADDRESS
            if kind == "permfail":
                self.store.rejected += 1
                return R.PERMFAIL_BY_ADDRESS
            if kind == "timeout":
                return None
            if kind == "disconnect":
                raise Disconnect()
        rcpt.tag = rcpt.address.tag
        return R.RECIPIENT_OK

    async def deliver(self, session: Session, env: Envelope, msg: ReceivedMessage) -> Reply:
        id_ = await self.store.add(env, session.hop(), msg)
        return R.QUEUED.with_text(f"OK queued as {id_}")

    def paused(self) -> bool:
        return self.store.paused
