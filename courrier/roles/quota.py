"""The SMTP roles' quota checks (issue 15 item 5): 552 5.2.2 "mailbox full" (RFC 3463 §3.3, X.2.2).

The rule, as Postfix in front of Dovecot's LMTP applies it:

- RCPT: a recipient whose mailbox is full — or would be by the ``SIZE=`` the client declared (RFC 1870 §6.1) — gets
  552 5.2.2 at once (RFC 5321 §4.5.3.1.10 allows 552 at RCPT); the transaction goes on with the others.
- End of DATA: SMTP has one reply for every recipient (RFC 5321 §4.2.5; LMTP's reply per recipient, RFC 2033 §4.2, is
  not available). When the message would take every local recipient's mailbox past its quota, the transaction is
  refused with 552 5.2.2 and nothing is stored. Otherwise it is stored for those with room and accepted with 250;
  having taken responsibility (RFC 5321 §6.1), the server reports the others to the sender in a failure DSN
  (RFC 3464, Status 5.2.2) through ``Refused`` (the queue's DSN path, wired by the app).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from courrier.mail.envelope import Envelope, Hop, Recipient
from courrier.mail.message import ReceivedMessage
from courrier.mail.reply import Reply
from courrier.quota import Quotas
from courrier.smtp import replies as R

# (envelope, hop, message, recipients refused after the 250, the reply for them) → a failure DSN to the sender
Refused = Callable[[Envelope, Hop | None, ReceivedMessage, list[Recipient], Reply], Awaitable[None]]


async def check_rcpt(quotas: Quotas | None, env: Envelope, rcpt: Recipient) -> Reply | None:
    """552 5.2.2 for a local recipient whose mailbox is full or too full for the declared SIZE, else None."""
    if quotas is None or not rcpt.mailbox:
        return None
    q = await quotas.refused(rcpt.mailbox, env.size or 0)
    if q is None:
        return None
    return R.MAILBOX_FULL.with_text(f"Mailbox full: {rcpt.address} is over its storage quota")


async def over_quota(quotas: Quotas | None, mailboxes: dict[str, str], size: int) -> set[str]:
    """The accounts among ``mailboxes`` that ``size`` more octets would take past their quota."""
    if quotas is None:
        return set()
    return {a for a in mailboxes if await quotas.refused(a, max(size, 1)) is not None}


def refused_reply(rcpts: list[Recipient]) -> Reply:
    """The end-of-DATA 552 when no local recipient has room (see the module docstring)."""
    names = ", ".join(str(r.address) for r in rcpts[:3]) + (" …" if len(rcpts) > 3 else "")
    return R.MAILBOX_FULL.with_text(f"Mailbox full: {names} over storage quota")
