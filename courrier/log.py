"""Structured logging: one line per event, ``key=value`` pairs, the queue id on every line about a message.

    2026-11-27T12:00:00.123Z info smtp.accepted qid=8F3K2PQRSTV sid=1a2b3c4d from=<a@x.test> rcpts=2 size=2048

Values with spaces or quotes are quoted. Secrets never reach this module: callers pass no passwords, and AUTH
payloads are logged only as ``mechanism=PLAIN user=…``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

_logger = logging.getLogger("courrier")


def _fmt_value(v: Any) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\n\r\t'):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'
    return s


def format_event(level: str, event: str, fields: dict[str, Any]) -> str:
    t = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    parts = [ts, level, event]
    parts += [f"{k}={_fmt_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


def event(event: str, level: str = "info", **fields: Any) -> None:
    """Logs one event line. ``level`` is one of debug, info, warn, error."""
    lvl = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}[level]
    if _logger.isEnabledFor(lvl):
        _logger.log(lvl, format_event(level, event, fields))


def setup(level: str = "info", stream: Any = None) -> None:
    """Routes courrier's events to ``stream`` (stderr by default), one line each."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.handlers[:] = [handler]
    _logger.setLevel(level.upper() if level != "warn" else "WARNING")
    _logger.propagate = False
