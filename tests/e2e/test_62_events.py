"""Scenario 62: the WebSocket /api/events sends Mailpit's frames — `new` when SMTP delivers, then `update`,
`delete`, `truncate` and `stats` as the API changes messages."""

from __future__ import annotations

import asyncio
import json
import smtplib

import httpx
import pytest
import websockets


async def next_of(ws, type_: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            assert set(frame) == {"Type", "Data"}
            if frame["Type"] == type_:
                return frame


async def test_new_update_delete_events(server_factory):
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    base = f"127.0.0.1:{srv.ports['http']}"
    async with websockets.connect(f"ws://{base}/api/events") as ws:
        loop = asyncio.get_running_loop()

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
                c.sendmail("a@sender.test", ["bob@example.test"],
                           b"From: a@sender.test\r\nTo: bob@example.test\r\nSubject: live one\r\n\r\nhello\r\n")

        await loop.run_in_executor(None, send)
        new = await next_of(ws, "new")
        assert new["Data"]["Subject"] == "live one" and new["Data"]["Read"] is False
        mid = new["Data"]["ID"]
        stats = await next_of(ws, "stats")
        assert stats["Data"]["Total"] == 1 and stats["Data"]["Unread"] == 1

        async with httpx.AsyncClient(base_url=f"http://{base}") as h:
            await h.put("/api/v1/messages", json={"IDs": [mid], "Read": True})
            assert (await next_of(ws, "update"))["Data"] == {"ID": mid, "Read": True}
            await h.request("DELETE", "/api/v1/messages", json={"IDs": [mid]})
            assert (await next_of(ws, "delete"))["Data"] == {"ID": mid}
            await h.delete("/api/v1/messages")
            assert (await next_of(ws, "truncate"))["Data"] is None


async def test_shutdown_is_graceful_with_a_websocket_open(server_factory):
    srv = server_factory(listeners=("smtp", "http"), capture=True).start()
    async with websockets.connect(f"ws://127.0.0.1:{srv.ports['http']}/api/events") as ws:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stopping = loop.run_in_executor(None, srv.stop)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:  # the stats frame sent on connect, then the close
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # "service restart"
        assert await stopping == 0 and loop.time() - t0 < 5
