"""The inspector's HTTP listener: uvicorn inside the mail server's own event loop.

uvicorn normally owns the process: it installs SIGINT/SIGTERM handlers and binds its own socket. Here ``App.run``
owns the signals (one shutdown path for every listener), so ``_EmbeddedServer`` disables uvicorn's signal capture,
and the sockets are bound here first so a taken port fails start-up with one line (``StartupError``) instead of
uvicorn's ``sys.exit``. Shutdown asks uvicorn to exit and gives open requests ``GRACEFUL_SECONDS`` to finish;
WebSocket clients get a close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import uvicorn

from courrier import log
from courrier.config import Config, HostPort
from courrier.lifecycle import Service, StartupError

if TYPE_CHECKING:
    from courrier.privileges import Prebound
    from courrier.web.context import WebContext

GRACEFUL_SECONDS = 5


class BindError(Exception):
    """A one-line reason the HTTP listener cannot start."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host application decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn versions call this instead
        return None


def check_bind(cfg: Config) -> None:
    """Secure by default: a non-loopback HTTP bind needs ``[http] auth_file`` unless explicitly waived."""
    remote = [a for a in cfg.listen.http if not a.is_loopback]
    if remote and cfg.http.auth_file is None and not cfg.http.allow_insecure_remote:
        raise BindError(f"refusing to serve the web UI on {remote[0]} without [http] auth_file "
                        f"(set [http] allow_insecure_remote = true to waive)")


def bind_socket(addr: HostPort) -> socket.socket:
    family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        host = "127.0.0.1" if addr.host == "localhost" else addr.host
        sock.bind((host, addr.port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        reason = "address already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise BindError(f"cannot listen for http on {addr}: {reason}") from None
    return sock


class HTTPServer:
    """One uvicorn server over every ``[listen] http`` address, started and stopped by the App."""

    def __init__(self, asgi_app: Any, addrs: tuple[HostPort, ...], prebound: Prebound | None = None) -> None:
        self.addrs = addrs
        self.prebound = prebound  # sockets bound as root before the privilege drop
        self.config = uvicorn.Config(
            asgi_app, lifespan="off", log_config=None, access_log=False, log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_SECONDS, ws="websockets-sansio", ws_max_size=1 << 20,
            server_header=False, proxy_headers=False, timeout_keep_alive=30, limit_concurrency=1000,
        )
        self.server = _EmbeddedServer(self.config)
        self.sockets: list[socket.socket] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            for a in self.addrs:
                taken = self.prebound.take("http", a) if self.prebound else None
                self.sockets += taken or [bind_socket(a)]
        except BindError:
            for s in self.sockets:
                s.close()
            raise
        self.task = asyncio.create_task(self.server.serve(sockets=self.sockets), name="http")
        while not self.server.started:
            if self.task.done():
                exc = self.task.exception()
                raise BindError(f"http listener failed to start: {exc!r}")
            await asyncio.sleep(0.01)
        log.event("http.started", addrs=",".join(str(a) for a in self.addrs))

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self.task, GRACEFUL_SECONDS + 5)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()
        except SystemExit:  # uvicorn exits on a failed startup; we already reported it
            pass
        for s in self.sockets:
            s.close()
        self.task = None


async def start_http(cfg: Config, make_context: Callable[[], WebContext],
                     prebound: Prebound | None = None) -> Service:
    """Checks the bind policy, builds the inspector's context (``App.web_context``) and binds it (on ``prebound``
    sockets when the server was started as root); the returned Service stops it."""
    from courrier.web.asgi import build

    try:
        check_bind(cfg)
        ctx = make_context()
        server = HTTPServer(build(ctx), cfg.listen.http, prebound)
        await server.start()
    except BindError as e:
        raise StartupError(str(e)) from None

    async def stop() -> None:
        ctx.ready = False
        await ctx.aclose()
        await server.stop()

    banner = [f"{'http':<12} {str(a):<22} web UI + API{' (auth)' if ctx.auth.required else ''}"
              for a in cfg.listen.http]
    return Service("http", stop, banner)
