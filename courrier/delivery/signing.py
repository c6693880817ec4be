"""DKIM signing on the way out, with the one fallback rule both outbound paths share.

Signing is an addition to a message the server has already accepted: a message whose header dkimpy cannot
canonicalize, or a key that fails at signing time, must not lose the mail. So the message goes on unsigned and one
``queue.sign_failed`` line (with the queue id) says so — the receiver's DMARC check then judges it as unsigned mail,
which is what it would have been without a key. Used by submission's relay (``queue/outbound.py``) and by the queue
for sendmail drops and DSNs (``queue/runner.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from courrier import log

Signer = Callable[[bytes], bytes]  # message -> the DKIM-Signature field(s) to prepend (b"" when no key applies)


def sign_or_keep(signer: Signer | None, message: bytes, qid: str) -> bytes:
    """``message`` with the signer's header(s) on top; unchanged without a signer or when signing fails (logged)."""
    if signer is None:
        return message
    try:
        return signer(message) + message
    except Exception as e:  # an unsigned message is better than a lost one
        log.event("queue.sign_failed", level="error", qid=qid, error=repr(e))
        return message
