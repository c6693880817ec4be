"""A ``dnsfunc`` for dkimpy's own Python API that asks a test DNS server with plain dnspython.

dkimpy's ``dkimverify`` script cannot be pointed at a test DNS server; its Python API can, through this hook. It is
deliberately independent of courrier's resolver, so "courrier signs, dkimpy verifies" checks courrier against a
verifier that shares none of its DNS code.
"""

from __future__ import annotations

from collections.abc import Callable

import dns.nameserver
import dns.resolver


def dnsfunc_for(port: int) -> Callable[..., bytes | None]:
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            answer = r.resolve(qname, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return dnsfunc
