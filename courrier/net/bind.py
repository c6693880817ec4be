"""Listening sockets for one configured address, bound the same way by every listener (and before a privilege drop).

An address may stand for several sockets: ``localhost`` resolves to 127.0.0.1 and ::1, and each gets its own. An
IPv6 socket is bound with IPV6_V6ONLY (RFC 3493 §5.3), so ``"0.0.0.0:25"`` and ``"[::]:25"`` can both be listed:
without it Linux's dual-stack ``[::]`` would also take the IPv4 port and the second bind would fail. Clients of one
listener are therefore always seen with their own family's address (no ``::ffff:`` mapped IPv4), which is what the
per-client limits of ``courrier/net/limits.py`` count.
"""

from __future__ import annotations

import errno
import socket

from courrier.config import HostPort


class BindFailure(Exception):
    """One line: which listener could not listen on which address, and why."""


def bind_listening(name: str, addr: HostPort) -> list[socket.socket]:
    """Every address ``addr.host`` stands for, bound (not yet listening) and non-blocking; all or none."""
    host = None if addr.host in ("", "*") else addr.host
    try:
        infos = socket.getaddrinfo(host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise BindFailure(f"cannot listen for {name} on {addr}: {e.strerror}") from None
    out: list[socket.socket] = []
    seen = set()
    for family, kind, proto, _, sockaddr in infos:
        if (family, sockaddr[:2]) in seen:
            continue
        seen.add((family, sockaddr[:2]))
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)  # not listen(): the event loop does at start_serving, once the stores are ready
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            for s in out:
                s.close()
            reason = "address already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            raise BindFailure(f"cannot listen for {name} on {addr}: {reason}") from None
        out.append(sock)
    return out
