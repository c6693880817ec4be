"""``courrier serve --check-config``: everything ``serve`` would trip over, found before it starts.

The configuration itself is checked by loading it (courrier/config.py refuses it in one line). Beyond that, what only
shows at start is checked here and reported one problem per line, all of them at once: the ``user`` exists and can
reach what the server needs (checked *as that user*, in a forked child that drops privileges exactly as ``serve``
does), the certificate and key load as a pair, DKIM keys are usable, each listener address can be bound, and the
web UI is not offered to the network without a password. It sits beside ``app`` in the layer order: it checks
the assembled server's needs.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl

from courrier import privileges, tlsutil
from courrier.config import LISTENER_NAMES, Config, HostPort


def _as_user(cfg: Config, ident: privileges.Identity) -> list[str]:
    """``privileges.unreachable`` run as ``ident`` in a forked child (the parent stays root)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop exactly as serve does, report, exit without running any cleanup of the parent
        code = 0
        try:
            os.close(r)
            privileges.drop(ident)
            lines = privileges.unreachable(cfg)
            os.write(w, "\n".join(lines).encode())
        except BaseException as e:  # noqa: BLE001 - anything at all must come back as one line
            os.write(w, f"cannot switch to user {ident.name}: {e}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    return [line for line in text.splitlines() if line]


def _bindable(name: str, addr: HostPort) -> str | None:
    """None when ``addr`` can be bound now (it is released at once), else the reason."""
    try:
        infos = socket.getaddrinfo(addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"cannot listen for {name} on {addr}: {e.strerror}"
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(sockaddr)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    return f"cannot listen for {name} on {addr}: address already in use"
                if e.errno == errno.EACCES:
                    return (f"cannot listen for {name} on {addr}: permission denied (ports below 1024 need root "
                            "or CAP_NET_BIND_SERVICE)")
                return f"cannot listen for {name} on {addr}: {e.strerror or e}"
    return None


def problems(cfg: Config) -> list[str]:
    """Every problem found, one line each; empty when ``serve`` should start."""
    out: list[str] = []
    ident = None
    try:
        ident = privileges.check_start(cfg)
    except privileges.PrivilegeError as e:
        out.append(str(e))
    if ident is not None:
        out += _as_user(cfg, ident)
    elif cfg.user and not out:
        out += privileges.unreachable(cfg)
    if cfg.tls.cert is not None and cfg.tls.key is not None:
        try:
            tlsutil.server_context(cfg.tls.cert, cfg.tls.key)
        except (ssl.SSLError, OSError) as e:
            out.append(f"cannot load TLS certificate {cfg.tls.cert} / key {cfg.tls.key}: {e}")
    for name, pair in cfg.tls.domains.items():  # each SNI pair loads on its own (courrier/tlsutil.py)
        try:
            tlsutil.server_context(pair.cert, pair.key)
        except (ssl.SSLError, OSError) as e:
            out.append(f"cannot load TLS certificate of tls.domains.{name} {pair.cert} / key {pair.key}: {e}")
    from courrier.mailauth import dkim as dkim_keys

    _, bad = dkim_keys.load_keys(cfg.data_dir / "dkim", cfg.dkim.keys, cfg.dkim.selector)
    out += [f"unusable DKIM key {b}" for b in bad]
    for name in LISTENER_NAMES:
        for addr in getattr(cfg.listen, name, ()):
            reason = _bindable(name, addr)
            if reason:
                out.append(reason)
    from courrier.web.server import BindError, check_bind

    try:
        check_bind(cfg)
    except BindError as e:
        out.append(str(e))
    return out
