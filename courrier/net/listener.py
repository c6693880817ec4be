"""Stream plumbing shared by the POP3 and IMAP listeners (and ManageSieve's): protocol factory, connection limits,
shutdown. It lives in the neutral network module, beside the limits, so no protocol imports another to get it.

These protocols are line-and-literal oriented, so they use asyncio streams (``StreamWriter.start_tls`` upgrades a
connection in place for STLS/STARTTLS). Each protocol has its own ``ConnectionLimiter`` (courrier/net/limits.py):
IMAP and IMAPS share one, POP3 and POP3S another, so a flood on one protocol never shuts the others out.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

from courrier import log
from courrier.net.limits import ConnectionLimiter, Refusal

# The greeting that refuses a connection over the limit, in each protocol's words: IMAP's BYE greeting (RFC 3501
# §7.1.5) with RFC 5530's UNAVAILABLE; POP3's -ERR greeting with RFC 3206's SYS/TEMP; ManageSieve's BYE (RFC 5804 §1.3).
BUSY = {
    "imap": b"* BYE [UNAVAILABLE] %s, try again later\r\n",
    "pop3": b"-ERR [SYS/TEMP] %s, try again later\r\n",
    "managesieve": b'BYE (TRYLATER) "%s, try again later"\r\n',
}

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class StreamListener:
    """Runs ``handler`` per connection; tracks the tasks so ``shutdown`` can close them."""

    def __init__(self, name: str, handler: Handler, limiter: ConnectionLimiter, *, line_limit: int = 65536) -> None:
        self.name = name
        self.handler = handler
        self.limiter = limiter
        self.line_limit = line_limit
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    def factory(self) -> asyncio.Protocol:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.line_limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, self._connected, loop=loop)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        ip = str(peer[0])
        task = asyncio.current_task()
        slot = self.limiter.acquire(ip)
        if isinstance(slot, Refusal):
            log.event(f"{self.name}.refused", level="warn", ip=ip, reason=slot.value)
            writer.write(BUSY[self.limiter.protocol] % slot.value.encode())
            writer.close()
            return
        if task is not None:
            self.tasks.add(task)
        self.writers.add(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # shutdown() cancels sessions on purpose; ending normally keeps asyncio's stream callback from
            # logging the cancellation as an error
            try:
                await asyncio.wait_for(writer.drain(), 1)
            except (Exception, asyncio.CancelledError):
                pass
        finally:
            slot.release()
            self.writers.discard(writer)
            if task is not None:
                self.tasks.discard(task)
            writer.close()

    async def shutdown(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
