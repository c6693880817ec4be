"""An in-process capture server for test suites: the real App in capture mode, its event loop on a thread.

Why in-process rather than ``courrier serve --capture`` as a subprocess: it starts in a fraction of a second, needs
no free-port guessing (the listening sockets are bound here on port 0 and handed to the App as pre-bound sockets,
the way a root start hands them over, so no other process can take a port between choosing and binding it), and it
stops with the test session even when the suite is interrupted.

The App runs exactly as under ``courrier serve --capture`` — same SMTP engine, store and HTTP API — except that
``App.run`` is not used: it installs signal handlers, which only the main thread may do. Start and stop are driven
from the calling thread instead.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from courrier import config
from courrier.app import App
from courrier.config import HostPort
from courrier.privileges import Prebound
from courrier.testing.client import MailpitClient

START_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0  # the App's own graceful bounds (in-flight SMTP, uvicorn) fit inside this


def _listening(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))  # the kernel picks a free port
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


class CaptureServer:
    """``with CaptureServer(tmp_dir) as srv:`` — capture mode on loopback, SMTP at ``srv.smtp_host``:``srv.smtp_port``,
    the web UI and Mailpit API at ``srv.base_url``, every message kept under ``data_dir``.

    ``settings`` are configuration keys as in courrier.toml (``{"capture": {"tag_rules": [...]}}``) laid over the
    defaults below. SPF/DKIM/DMARC checks are off by default: a test suite runs offline, and each message would
    otherwise wait for DNS lookups up to ``[auth] check_timeout``; set ``{"auth": {"checks": True}}`` to see them."""

    host = "127.0.0.1"

    def __init__(self, data_dir: Path, settings: Mapping[str, Any] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.settings = dict(settings or {})
        self.smtp_port = 0
        self.http_port = 0
        self.client: MailpitClient | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def smtp_host(self) -> str:
        return self.host

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def _config(self, smtp: HostPort, http: HostPort) -> config.Config:
        off = {name: "" for name in ("submission", "submissions", "pop3", "pop3s", "imap", "imaps", "managesieve")}
        raw = {"mode": "capture", "hostname": "localhost", "domains": ["localhost"],
               "data_dir": str(self.data_dir), "auth": {"checks": False},
               "listen": {**off, "smtp": str(smtp), "http": str(http)}}
        return config.from_mapping(_merge(raw, self.settings), base=self.data_dir)

    def start(self) -> CaptureServer:
        smtp_sock, http_sock = _listening(self.host), _listening(self.host)
        smtp = HostPort(self.host, smtp_sock.getsockname()[1])
        http = HostPort(self.host, http_sock.getsockname()[1])
        try:
            cfg = self._config(smtp, http)
        except BaseException:
            smtp_sock.close()
            http_sock.close()
            raise
        self.smtp_port, self.http_port = smtp.port, http.port
        prebound = Prebound({("smtp", smtp): [smtp_sock], ("http", http): [http_sock]})
        self._thread = threading.Thread(target=self._run, args=(cfg, prebound), name="courrier-capture",
                                        daemon=True)  # an interrupted session must not hang on it
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise RuntimeError(f"courrier capture server did not start within {START_TIMEOUT:g}s")
        if self._error is not None:
            raise RuntimeError(f"courrier capture server failed to start: {self._error}") from self._error
        self.client = MailpitClient(self.base_url)
        return self

    def _run(self, cfg: config.Config, prebound: Prebound) -> None:
        try:
            asyncio.run(self._main(cfg, prebound))
        except BaseException as e:  # reported to the starting thread; after start, nothing is left to tell
            prebound.close_unused()  # what the App did not take yet
            self._error = e
            self._started.set()

    async def _main(self, cfg: config.Config, prebound: Prebound) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = App(cfg, prebound)  # built on this loop: its stores and locks belong to it
        await app.start()
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await app.stop()

    def stop(self) -> None:
        """Graceful stop (in-flight SMTP transactions finish), waiting for the loop thread to end."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT)
        alive = self._thread.is_alive()
        self._thread = None
        if alive:
            raise RuntimeError(f"courrier capture server did not stop within {STOP_TIMEOUT:g}s")

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
