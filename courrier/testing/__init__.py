"""Test support for applications that send mail: an in-process capture server and a Mailpit-compatible client.

The pytest plugin (``courrier.testing.plugin``, registered under the ``pytest11`` entry point) is built on these two;
they are usable without pytest as well (a context manager and an httpx client)."""

from courrier.testing.client import MailpitClient, MessageTimeout
from courrier.testing.server import CaptureServer

__all__ = ["CaptureServer", "MailpitClient", "MessageTimeout"]
