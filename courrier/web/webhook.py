"""``[http] webhook_url``: a JSON POST for each new captured message, as Mailpit's webhook sends it.

The body is the message's ``MessageSummary`` (the ``Data`` of the ``new`` event). Posting happens in a worker task,
one request at a time, through the stdlib HTTP client in a thread (bounded by ``TIMEOUT``), so a slow or dead
receiver never delays SMTP. At most ``MAX_PENDING`` posts wait; beyond that new ones are dropped and logged.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from courrier import log
from courrier.capture.records import Summary
from courrier.web.api import mailpit

TIMEOUT = 5.0
MAX_PENDING = 100


class Webhook:
    def __init__(self, url: str) -> None:
        self.url = url
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_PENDING)
        self.task = asyncio.get_running_loop().create_task(self._worker(), name="webhook")

    def on_event(self, event: dict[str, Any]) -> None:
        data = event.get("Data")
        if event.get("Type") != "new" or not isinstance(data, Summary):
            return
        try:
            self.queue.put_nowait(mailpit.summary(data))
        except asyncio.QueueFull:
            log.event("http.webhook_dropped", level="warn", id=data.id)

    def _post(self, body: bytes) -> int:
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "courrier"})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 (the operator's URL)
            return resp.status

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.queue.get()
            try:
                status = await loop.run_in_executor(None, self._post, json.dumps(data).encode())
                log.event("http.webhook", id=data.get("ID"), status=status)
            except (OSError, urllib.error.URLError, ValueError) as e:
                log.event("http.webhook_failed", level="warn", id=data.get("ID"), error=str(e))

    async def aclose(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
