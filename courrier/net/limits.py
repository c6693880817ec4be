"""Connection limits per protocol and the one notion of "a client" every limit counts by.

Each protocol gets its own ``ConnectionLimiter``: ``[limits] max_connections`` and ``max_connections_per_ip``
apply to SMTP (all SMTP listeners together), IMAP, POP3 and ManageSieve *separately*, so 10,000 idle SMTP
connections cannot shut IMAP or POP3 out (issue 11, item 6).

A client is its IPv4 address, or its IPv6 network of ``[limits] ipv6_prefix`` bits (default /64): one IPv6
customer usually owns a whole /64 and can pick a fresh address per connection, so counting IPv6 by address would
make per-client limits meaningless. ``client_key`` is the one function that says who a client is; the connection
limits here and the authentication-failure limiter both count by it.
"""

from __future__ import annotations

import enum
import ipaddress

from courrier.config import LimitsConfig

DEFAULT_IPV6_PREFIX = 64

# The protocol whose connection budget a listener draws from.
PROTOCOL_OF_LISTENER = {
    "smtp": "smtp", "submission": "smtp", "submissions": "smtp",
    "imap": "imap", "imaps": "imap",
    "pop3": "pop3", "pop3s": "pop3",
    "managesieve": "managesieve",
}
PROTOCOLS = ("smtp", "imap", "pop3", "managesieve")


def client_key(ip: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The identity per-client limits count by: an IPv4 address as is, an IPv6 address as its ``/ipv6_prefix``
    network (``2001:db8:1:2::/64``).

    IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``, seen on dual-stack sockets) count as the IPv4 client they
    are, and a zone index (``fe80::1%eth0``) is ignored. Anything that is no IP address (a Unix socket's empty
    peer name) is its own key, unchanged.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, ipv6_prefix), strict=False))
    return str(addr)


class Refusal(enum.Enum):
    """Why a connection was refused; each protocol words it in its own reply."""

    TOTAL = "too many connections"
    PER_CLIENT = "too many connections from your address"


class Slot:
    """One admitted connection; ``release`` gives the slot back (only the first call counts)."""

    __slots__ = ("limiter", "key", "_held")

    def __init__(self, limiter: ConnectionLimiter, key: str) -> None:
        self.limiter, self.key, self._held = limiter, key, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self.limiter._release(self.key)


class ConnectionLimiter:
    """Open connections of one protocol: ``max_connections`` in all, ``max_connections_per_ip`` per client.

    Memory is bounded by the number of open connections: a client's counter is dropped when it reaches zero.
    """

    def __init__(self, limits: LimitsConfig, protocol: str = "smtp") -> None:
        self.protocol = protocol
        self.max_total = limits.max_connections
        self.max_per_client = limits.max_connections_per_ip
        self.ipv6_prefix = limits.ipv6_prefix
        self.total = 0
        self.per_client: dict[str, int] = {}

    def acquire(self, ip: str) -> Slot | Refusal:
        key = client_key(ip, self.ipv6_prefix)
        if self.total >= self.max_total:
            return Refusal.TOTAL
        if self.per_client.get(key, 0) >= self.max_per_client:
            return Refusal.PER_CLIENT
        self.total += 1
        self.per_client[key] = self.per_client.get(key, 0) + 1
        return Slot(self, key)

    def _release(self, key: str) -> None:
        self.total -= 1
        n = self.per_client.get(key, 1) - 1
        if n <= 0:
            self.per_client.pop(key, None)
        else:
            self.per_client[key] = n


class ConnectionLimits:
    """One ``ConnectionLimiter`` per protocol, built once by the application and handed to each listener."""

    def __init__(self, limits: LimitsConfig) -> None:
        self.by_protocol = {p: ConnectionLimiter(limits, p) for p in PROTOCOLS}

    def for_listener(self, listener: str) -> ConnectionLimiter:
        return self.by_protocol[PROTOCOL_OF_LISTENER[listener]]
