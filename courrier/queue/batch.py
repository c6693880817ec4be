"""Micro-batching of blocking work: what many coroutines ask for while one call runs goes to the next call, together.

The queue runner loads messages (rows + spool files) and records their outcomes through one of these each: a
thousand messages a second become a few dozen thread hand-offs, SQLite transactions and directory fsyncs instead of
several thousand — a thread wake-up costs more than the work on this kind of machine (bench/RESULTS.md). Nothing is
delayed on purpose: a lone request starts at once; requests wait only for the call already running (group commit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """``await b.submit(item)`` → ``fn(items)[i]``, where ``fn`` runs in ``executor`` on every item submitted while the
    previous call ran (one call at a time). ``fn`` returns one result per item, in order; when it raises, every item
    of that call gets the exception."""

    def __init__(self, executor: Executor, fn: Callable[[list[T]], Sequence[R]]) -> None:
        self._executor = executor
        self._fn = fn
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._busy = False
        self.calls = 0  # for tests and the benchmark

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start, loop)  # after this iteration's other submitters
        return await fut

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            self._busy = False
            return
        self.calls += 1
        try:
            cf = loop.run_in_executor(self._executor, self._fn, [item for item, _ in batch])
        except BaseException as e:  # executor shut down: nobody may wait forever
            self._busy = False
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        cf.add_done_callback(lambda f: self._done(loop, batch, f))

    def _done(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[T, asyncio.Future[R]]],
              f: asyncio.Future[Sequence[R]]) -> None:
        exc: BaseException | None = asyncio.CancelledError() if f.cancelled() else f.exception()
        results = f.result() if exc is None else ()
        for k, (_, fut) in enumerate(batch):
            if fut.done():  # its waiter was cancelled meanwhile
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(results[k])
        self._start(loop)
