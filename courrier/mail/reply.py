"""The one reply type: an SMTP reply code, its enhanced status code (RFC 3463) and text, and whether it is final.

In the neutral core so that every layer asks the same type — the server's answers (named in
``courrier.smtp.replies``), a peer's replies and delivery outcomes (``courrier.delivery``) — without delivery
importing the SMTP engine. ``MailError`` carries a reply through layers that are not SMTP-aware (storage, delivery)
and back to the wire — maddy's idea.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property


@dataclass(frozen=True)
class Reply:
    """A reply code, its enhanced status and text, and whether it is final.

    ``permanent`` follows the code (5xx) unless set: the queue's expiry, for one, is reported as 4.4.7 ("delivery
    time expired", RFC 3463) yet is final. ``ok`` and ``temporary`` follow from the code and ``permanent``, so every
    layer — the server's answers, a peer's replies, delivery outcomes — asks one type (maddy's
    ``SMTPError.Temporary()``, mox's ``smtpclient.Error{Permanent}``)."""

    code: int
    enhanced: str | None  # "X.Y.Z" or None (greeting, EHLO, and codes that carry none)
    text: str
    permanent: bool = field(default=None, kw_only=True)  # type: ignore[assignment]  # None → from the code

    def __post_init__(self) -> None:
        if self.permanent is None:
            object.__setattr__(self, "permanent", self.code >= 500)

    @property
    def ok(self) -> bool:
        return self.code < 400

    @property
    def temporary(self) -> bool:
        return not self.ok and not self.permanent

    @property
    def status(self) -> str:
        """The RFC 3463 status, derived from the reply when it carries none."""
        if self.enhanced:
            return self.enhanced
        return "2.0.0" if self.ok else ("5.0.0" if self.permanent else "4.0.0")

    def with_text(self, text: str) -> Reply:
        return replace(self, text=text)

    def filled(self, **values: object) -> Reply:
        """The reply with the ``{name}`` fields of its text filled in (the named replies that carry details)."""
        return replace(self, text=self.text.format(**values))

    @cached_property
    def wire(self) -> bytes:
        """``format()`` computed once per Reply: the named replies below are constants, so the hot path sends
        precomputed bytes (cached_property writes the instance dict directly, which a frozen dataclass allows)."""
        return self.format()

    def format(self, enhanced: bool = True) -> bytes:
        """Wire form; multi-line text becomes a continuation reply (RFC 5321 §4.2.1)."""
        lines = self.text.split("\n") or [""]
        out = []
        for i, line in enumerate(lines):
            sep = "-" if i < len(lines) - 1 else " "
            prefix = f"{self.enhanced} " if enhanced and self.enhanced else ""
            out.append(f"{self.code}{sep}{prefix}{line}\r\n")
        return "".join(out).encode("utf-8", "replace")

    def __str__(self) -> str:
        e = f"{self.enhanced} " if self.enhanced else ""
        return f"{self.code} {e}{self.text}"


class MailError(Exception):
    """An error that knows its SMTP reply: raise anywhere below the protocol, answered as-is on the wire."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply

    @property
    def temporary(self) -> bool:
        return self.reply.temporary
