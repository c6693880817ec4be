"""queue/batch.py: what is asked while a call runs goes to the next call, together; one call at a time; a failing
call fails each of its items."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from courrier.queue.batch import Batcher


async def test_batches_form_while_a_call_runs():
    calls: list[list[int]] = []
    running = threading.Lock()

    def work(items: list[int]) -> list[int]:
        assert running.acquire(blocking=False), "two calls at once"
        try:
            calls.append(items)
            time.sleep(0.05)
            return [i * 10 for i in items]
        finally:
            running.release()

    with ThreadPoolExecutor(4) as pool:
        b = Batcher(pool, work)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.01)  # the first call runs alone; these 20 wait for it, then go together
        rest = await asyncio.gather(*(b.submit(i) for i in range(1, 21)))
        assert await first == 0 and rest == [i * 10 for i in range(1, 21)]
    assert calls == [[0], list(range(1, 21))] and b.calls == 2


async def test_a_failing_call_fails_its_items_and_the_next_call_runs():
    def work(items: list[str]) -> list[str]:
        if "bad" in items:
            raise OSError("disk")
        return items

    with ThreadPoolExecutor(1) as pool:
        b = Batcher(pool, work)
        results = await asyncio.gather(b.submit("a"), b.submit("bad"), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
        assert await b.submit("c") == "c"
    with pytest.raises(RuntimeError):  # executor shut down: the waiter hears of it
        await b.submit("d")
