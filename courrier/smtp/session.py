"""Value objects of one SMTP connection: the Session (who is talking) and the Envelope (one transaction).

Kept free of protocol code so policies (MX, submission, capture) and delivery can use them without the engine.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import time
from dataclasses import dataclass, field

from courrier.smtp.address import NULL, Address

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


def new_session_id() -> str:
    return f"{next(_counter) & 0xFFFFFFFF:08x}"


@dataclass
class TLSInfo:
    version: str
    cipher: str
    bits: int | None = None


@dataclass
class Session:
    peer_ip: str
    peer_port: int
    local_ip: str
    local_port: int
    listener: str  # "smtp", "submission", "submissions"
    hostname: str  # our name
    helo: str | None = None
    esmtp: bool = False
    tls: TLSInfo | None = None
    user: str | None = None  # authenticated account address
    auth_mechanism: str | None = None
    trust_loopback: bool = True
    id: str = field(default_factory=new_session_id)
    started: float = field(default_factory=time.time)

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer_ip.split("%")[0]).is_loopback
        except ValueError:
            return False

    @property
    def trusted_local(self) -> bool:
        """A loopback client counts as local (AUTH without TLS allowed) unless ``trust_loopback = false``."""
        return self.trust_loopback and self.is_loopback

    @property
    def protocol_name(self) -> str:
        """The ``with`` keyword of the Received: line (RFC 3848, RFC 6531 §3.7.3 would add UTF8)."""
        if not self.esmtp:
            return "SMTP"
        return "ESMTP" + ("S" if self.tls else "") + ("A" if self.user else "")


@dataclass
class Recipient:
    address: Address  # as the client gave it
    mailbox: str | None = None  # local account address it resolves to (set by the policy)
    notify: tuple[str, ...] = ()  # DSN NOTIFY (RFC 3461 §4.1): SUCCESS, FAILURE, DELAY or NEVER
    orcpt: str | None = None  # DSN ORCPT, "type;address" decoded
    tag: str | None = None  # user+tag@ subaddress


@dataclass
class Envelope:
    mail_from: Address = NULL
    body: str | None = None  # 7BIT, 8BITMIME, BINARYMIME
    smtputf8: bool = False
    size: int | None = None  # SIZE= declared by the client
    ret: str | None = None  # DSN RET: FULL or HDRS
    envid: str | None = None  # DSN ENVID
    rcpts: list[Recipient] = field(default_factory=list)
    queue_id: str = field(default_factory=new_queue_id)
    received_at: float = field(default_factory=time.time)
