"""The one envelope of the program: what a message carries besides its content, from receipt to delivery.

``Envelope`` and ``Recipient`` are what the SMTP engine fills in (RFC 5321 §3.3 MAIL/RCPT with their ESMTP
parameters: SIZE, BODY, SMTPUTF8, the DSN parameters of RFC 3461), what the outbound spool writes to disk, what
delivery stores and what capture mode records. ``Hop`` is one receipt of a message — who handed it over and how:
the data of a ``Received:`` line (RFC 5321 §4.4) — kept apart because a message queued and delivered later has an
envelope but no new hop (chasquid's ``Courier.Deliver`` and maddy's ``DeliveryTarget`` + ``MsgMetadata`` split it
the same way).

A leaf module: it imports only ``courrier.mail.path``, so the engine, delivery, the queue and capture all share it.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field

from courrier.mail.path import NULL, Address

_B32 = "0123456789BCDFGHJKLMNPQRSTVWXYZ"
_counter = itertools.count(random.getrandbits(24))  # random start: two processes in the same ms still differ


def _b32(n: int, width: int = 0) -> str:
    out = ""
    while n:
        n, r = divmod(n, len(_B32))
        out = _B32[r] + out
    return out.rjust(width, "0")


def new_queue_id() -> str:
    """A short id, sortable by time and unique, that every log line about one message carries.

    Milliseconds since the epoch, then a per-process counter with a random start — no system call per id (an
    os.urandom per message cost measurable time on the SMTP hot path).
    """
    return _b32(int(time.time() * 1000)) + _b32(next(_counter) % (len(_B32) ** 5), 5)


@dataclass(frozen=True)
class TLSInfo:
    version: str
    cipher: str
    bits: int | None = None


@dataclass(frozen=True)
class Hop:
    """One receipt of a message (RFC 5321 §4.4): the values a ``Received:`` line is made of.

    ``client_ip`` is None when the message did not come over the network (the inspector's release): the line then
    names only our host, never an invented peer.
    """

    by: str  # our host name
    listener: str  # "smtp", "submission", "submissions", "release"
    protocol: str = ""  # the ``with`` keyword (RFC 3848): SMTP, ESMTP, ESMTPS, ESMTPSA…; "" for none
    client_ip: str | None = None
    client_port: int = 0
    helo: str | None = None
    tls: TLSInfo | None = None
    user: str | None = None  # the authenticated account (RFC 4954)


@dataclass
class Recipient:
    address: Address  # as the client gave it
    mailbox: str | None = None  # local account address it resolves to (set by the policy)
    notify: tuple[str, ...] = ()  # DSN NOTIFY (RFC 3461 §4.1): SUCCESS, FAILURE, DELAY or NEVER
    orcpt: str | None = None  # DSN ORCPT (RFC 3461 §4.2), "type;address" decoded
    tag: str | None = None  # user+tag@ subaddress


@dataclass
class Envelope:
    mail_from: Address = NULL
    body: str | None = None  # 7BIT, 8BITMIME, BINARYMIME (RFC 6152, RFC 3030)
    smtputf8: bool = False  # RFC 6531
    size: int | None = None  # SIZE= declared by the client
    ret: str | None = None  # DSN RET (RFC 3461 §4.3): FULL or HDRS
    envid: str | None = None  # DSN ENVID (RFC 3461 §4.4)
    rcpts: list[Recipient] = field(default_factory=list)
    queue_id: str = field(default_factory=new_queue_id)
    received_at: float = field(default_factory=time.time)
    origin: str = ""  # who handed it to the queue, for its logs: "submission user@x", "sendmail uid=1000", "dsn …"
