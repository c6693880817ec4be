"""What one delivery attempt did for one recipient — chasquid's idea: the result and whether it is permanent.

That one bit is what the queue needs to choose between retrying and bouncing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    code: int  # the SMTP reply code (ours for local or connection failures: 451, 550, 554…)
    enhanced: str | None  # RFC 3463 status, e.g. "5.1.1"
    text: str
    host: str | None = None  # MX host (or "local", the smarthost name)
    address: str | None = None  # IP:port of the peer that answered
    tls: str | None = None  # TLS version of the session, if any
    remote_dsn: bool = False  # the peer accepted our DSN parameters: success notices are its job (RFC 3461 §5.2)

    @property
    def ok(self) -> bool:
        return self.code < 400

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @property
    def status(self) -> str:
        """The RFC 3463 status, derived from the reply code when the peer gave none."""
        if self.enhanced:
            return self.enhanced
        return "2.0.0" if self.ok else ("5.0.0" if self.permanent else "4.0.0")

    def __str__(self) -> str:
        e = f"{self.enhanced} " if self.enhanced else ""
        return f"{self.code} {e}{self.text}"


def ok(text: str = "delivered", **kw: str | bool | None) -> Outcome:
    return Outcome(250, "2.0.0", text, **kw)  # type: ignore[arg-type]


def temp(text: str, enhanced: str = "4.4.1", code: int = 451, **kw: str | bool | None) -> Outcome:
    return Outcome(code, enhanced, text, **kw)  # type: ignore[arg-type]


def perm(text: str, enhanced: str = "5.1.2", code: int = 550, **kw: str | bool | None) -> Outcome:
    return Outcome(code, enhanced, text, **kw)  # type: ignore[arg-type]
