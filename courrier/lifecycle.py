"""What a running part of the server is to the composition root: a ``Service`` it stops, or a ``StartupError``.

A leaf module (layer 0): the composition root (``courrier/app.py``) collects the services, and the parts it starts —
the inspector's HTTP listener (``courrier/web/server.py``), the access listeners — return them without importing
the App back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class StartupError(Exception):
    """A one-line reason the server cannot start (port taken, unreadable certificate…)."""


@dataclass
class Service:
    """Something with a lifecycle beside the SMTP listeners (queue runner, POP3, IMAP, HTTP)."""

    name: str
    stop: Callable[[], Awaitable[None]]
    banner: list[str] = field(default_factory=list)
