"""The embedded uvicorn server: same loop, no signal handlers of its own, clear bind errors, graceful stop."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import socket

import httpx
import pytest

from courrier.config import HostPort, HTTPConfig, ListenConfig, from_mapping
from courrier.web.server import BindError, HTTPServer, check_bind


async def hello(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serves_in_this_loop_without_touching_signals():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    port = free_port()
    srv = HTTPServer(hello, (HostPort("127.0.0.1", port),))
    await srv.start()
    try:
        assert {s: signal.getsignal(s) for s in before} == before
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/")
        assert r.text == "hello"
    finally:
        await asyncio.wait_for(srv.stop(), 10)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.get(f"http://127.0.0.1:{port}/")


async def test_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = HTTPServer(hello, (HostPort("127.0.0.1", port),))
        with pytest.raises(BindError, match=rf"cannot listen for http on 127.0.0.1:{port}: address already in use"):
            await srv.start()


def test_remote_bind_needs_auth_file(tmp_path):
    cfg = from_mapping({})
    remote = dataclasses.replace(cfg, listen=ListenConfig(http=(HostPort("0.0.0.0", 8025),)))
    with pytest.raises(BindError, match="auth_file"):
        check_bind(remote)
    check_bind(dataclasses.replace(remote, http=HTTPConfig(auth_file=tmp_path / "h")))
    check_bind(dataclasses.replace(remote, http=HTTPConfig(allow_insecure_remote=True)))
    check_bind(cfg)  # loopback default
