"""Test support for applications that send mail: an in-process capture server and a Mailpit-compatible client.

The pytest plugin (``courrier.testing.plugin``, registered under the ``pytest11`` entry point) is built on these two;
they are usable without pytest as well (a context manager and an httpx client). Imported lazily: pytest loads the
plugin in every run of every project where courrier is installed, and the server's imports (the whole App, the web
stack) would cost that run most of a second even when no test asks for a mail server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from courrier.testing.client import MailpitClient, MessageTimeout
    from courrier.testing.server import CaptureServer

__all__ = ["CaptureServer", "MailpitClient", "MessageTimeout"]


def __getattr__(name: str) -> Any:
    if name == "CaptureServer":
        from courrier.testing.server import CaptureServer
        return CaptureServer
    if name in ("MailpitClient", "MessageTimeout"):
        from courrier.testing import client
        return getattr(client, name)
    raise AttributeError(f"module 'courrier.testing' has no attribute {name!r}")
