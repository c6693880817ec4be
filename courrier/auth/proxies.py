"""Who the web client really is behind a reverse proxy: ``[http] trusted_proxies`` and ``X-Forwarded-For``.

X-Forwarded-For is a list each proxy *appends* the address it received the request from to, so only its right end
can be believed, and only as far as the hops are ours. The rule (CONTRACT, "trusted_proxies"): when the TCP peer is a
trusted proxy, the client is the rightmost X-Forwarded-For address that is not a trusted proxy; when the peer is
anything else, the header is ignored (any client can send one). Several X-Forwarded-For fields are one list, in
order (RFC 9110 §5.3). A hop written with a port (``192.0.2.1:8080``, ``[2001:db8::1]:8080``) is read without it;
an entry that is no address stops the walk at the last hop we could read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class TrustedProxies:
    """``[http] trusted_proxies`` (networks parsed by config) and the rule above."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    def trusted(self, addr: Address | None) -> bool:
        return addr is not None and any(addr.version == n.version and addr in n for n in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str] = ()) -> str:
        """The client address for a request from TCP peer ``peer`` carrying these X-Forwarded-For field values."""
        if not self.networks or not self.trusted(_address(peer)):
            return peer
        hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:
                break  # a hop we cannot read: the last one we could is as far as we can see
            client = str(addr)
            if not self.trusted(addr):
                break
        return client
