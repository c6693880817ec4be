"""Structured logging: one line per event, ``key=value`` pairs, the queue id on every line about a message.

    2026-11-27T12:00:00.123Z info smtp.message qid=238DQV873L0GDG sid=00ff63c2 sender=<a@x.test> rcpts=2 size=2048

Values with spaces, quotes or ``=`` are quoted. Secrets never reach this module: callers pass no passwords, and AUTH
is logged only as ``mechanism=PLAIN user=…``.

Why not the ``logging`` module on the hot path: building a LogRecord and writing to stderr from the event loop cost
~0.1 ms per line, three lines per message. ``serve`` therefore formats the line on the loop and hands it to one
writer thread that writes in batches (``setup(background=True)``); everything else writes directly.
"""

from __future__ import annotations

import atexit
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
_min_level = 20
_stream: IO[str] | None = None  # None: sys.stderr at the time of writing
_queue: _Lines | None = None
_writer: threading.Thread | None = None
BATCH_DELAY = 0.005  # seconds the background writer lets lines gather after the first (one wake-up per batch)
_NEEDS_QUOTES = re.compile(r'[\s"=\\]')
# Called with (event, level, fields) for every event, whatever the level logged: metrics and `courrier status`
# count events here (courrier/observe.py), so what is measured is exactly what is logged.
_observers: list[Callable[[str, str, dict[str, Any]], None]] = []


def _fmt_value(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    if s == "" or _NEEDS_QUOTES.search(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'
    return s


_second: list = [-1, ""]  # the last whole second formatted: strftime once a second, not once a line


def _timestamp(t: float) -> str:
    sec = int(t)
    if sec != _second[0]:
        _second[0], _second[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_second[1]}.{int((t - sec) * 1000):03d}Z"


def format_event(level: str, event: str, fields: dict[str, Any]) -> str:
    parts = [_timestamp(time.time()), level, event]
    parts += [f"{k}={_fmt_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def event(event: str, level: str = "info", **fields: Any) -> None:
    """Logs one event line. ``level`` is one of debug, info, warn, error."""
    for obs in _observers:
        obs(event, level, fields)
    if _LEVELS[level] < _min_level:
        return
    line = format_event(level, event, fields)
    q = _queue
    if q is not None:
        q.lines.append(line)
        if not q.ready.is_set():  # wakes the writer once per batch, not once per line
            q.ready.set()
    else:
        _write([line])


def observe(fn: Callable[[str, str, dict[str, Any]], None]) -> Callable[[], None]:
    """Adds an observer of every event; returns the function that removes it."""
    _observers.append(fn)
    return lambda: _observers.remove(fn) if fn in _observers else None


def _write(lines: list[str]) -> None:
    stream = _stream or sys.stderr
    try:
        stream.write("\n".join(lines) + "\n")
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stderr must not take the server down
        pass


class _Lines:
    """The background writer's inbox: lines appended on the caller's thread (a deque append holds no lock), and
    an event set when the first line of a batch arrives. A put into a queue with a waiting reader wakes that thread
    on every line — a futex call and a GIL hand-off each, three per SMTP message on the event loop."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()
        self.ready = threading.Event()
        self.closed = False


def _writer_loop(q: _Lines) -> None:
    while True:
        q.ready.wait()
        if not q.closed:
            time.sleep(BATCH_DELAY)  # let the batch gather: the lines of many messages, one wake-up
        q.ready.clear()
        batch = []
        while True:
            try:
                batch.append(q.lines.popleft())
            except IndexError:
                break
        for i in range(0, len(batch), 500):
            _write(batch[i:i + 500])
        if q.closed and not q.lines:
            return


def setup(level: str = "info", stream: IO[str] | None = None, *, background: bool = False) -> None:
    """Sets the least important level logged, the stream (stderr by default) and the background writer."""
    global _min_level, _stream, _queue, _writer
    _min_level = _LEVELS[level]
    _stream = stream
    if background and _queue is None:
        _queue = _Lines()
        _writer = threading.Thread(target=_writer_loop, args=(_queue,), name="courrier-log", daemon=True)
        _writer.start()
        atexit.register(flush)


def flush() -> None:
    """Stops the background writer after it wrote every pending line (at exit, and after a graceful stop)."""
    global _queue, _writer
    q, w = _queue, _writer
    if q is None or w is None:
        return
    _queue, _writer = None, None
    q.closed = True
    q.ready.set()
    w.join(5)
