"""What one delivery attempt did for one recipient: a :class:`~courrier.mail.reply.Reply` and where it came from.

chasquid's idea: the result and whether it is permanent — that one bit is what the queue needs to choose between
retrying and bouncing. The bit lives on the reply (one reply type for the server, the peers and delivery); the
outcome adds, by composition, who said it (host, address, TLS) and whether the peer took over DSN reporting.
"""

from __future__ import annotations

from dataclasses import dataclass

from courrier.mail.reply import Reply


@dataclass(frozen=True)
class Outcome:
    reply: Reply  # the peer's, or one of ours (courrier.delivery.replies) for what no peer said
    host: str | None = None  # MX host (or "local", "queue", the smarthost name)
    address: str | None = None  # IP:port of the peer that answered
    tls: str | None = None  # TLS version of the session, if any
    remote_dsn: bool = False  # the peer accepted our DSN parameters: success notices are its job (RFC 3461 §5.2)
    tls_policy: str | None = None  # outbound TLS policy of the attempt (courrier.delivery.tlspolicy): dane, …

    # read-through to the reply, for the delivery log and the queue's records
    @property
    def code(self) -> int:
        return self.reply.code

    @property
    def enhanced(self) -> str | None:
        return self.reply.enhanced

    @property
    def text(self) -> str:
        return self.reply.text

    @property
    def ok(self) -> bool:
        return self.reply.ok

    @property
    def permanent(self) -> bool:
        return self.reply.permanent

    @property
    def status(self) -> str:
        return self.reply.status

    def __str__(self) -> str:
        return str(self.reply)
