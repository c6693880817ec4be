"""The Session of one SMTP connection (who is talking), kept free of protocol code so the policies can use it.

The transaction's Envelope and Recipients are the program's one envelope (``courrier.mail.envelope``); what a
Received: line needs of this session is its ``hop()``.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import time
from dataclasses import dataclass, field

from courrier.mail.envelope import Hop, TLSInfo

_counter = itertools.count(random.getrandbits(24))  # random start: two processes in the same ms still differ


def new_session_id() -> str:
    return f"{next(_counter) & 0xFFFFFFFF:08x}"


@dataclass(slots=True)
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
        """The ``with`` keyword of the Received: line (RFC 3848; RFC 6531 §3.7.3 adds UTF8, see mail.trace)."""
        if not self.esmtp:
            return "SMTP"
        return "ESMTP" + ("S" if self.tls else "") + ("A" if self.user else "")

    def hop(self) -> Hop:
        """This connection as one receipt of a message: what its Received: line says."""
        return Hop(by=self.hostname, listener=self.listener, protocol=self.protocol_name, client_ip=self.peer_ip,
                   client_port=self.peer_port, helo=self.helo, tls=self.tls, user=self.user)
