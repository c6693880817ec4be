"""The pytest plugin (entry point ``pytest11``, name ``courrier``): a capture server for tests that send mail.

One server per test session (starting one is cheap, but not free), emptied before each test that asks for it, so
every test sees only its own mail. Fixtures:

- ``courrier_capture`` — function scope: the session's server, emptied; has ``smtp_host``, ``smtp_port``,
  ``base_url``, ``client`` (a MailpitClient), ``messages()``, ``wait_for(query, timeout)``, ``clear()``.
- ``courrier_capture_server`` — session scope: the CaptureServer itself, not emptied between tests.
- ``courrier_settings`` — session scope, ``{}``: override it in a conftest.py to set configuration keys
  (``{"capture": {"tag_rules": [...]}}``, ``{"auth": {"checks": True}}``).

See docs/pytest.md for Django and Flask set-ups.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported in the fixtures: a run whose tests never ask for a mail server does not pay for them
    from courrier.testing.client import MailpitClient
    from courrier.testing.server import CaptureServer


class Capture:
    """What a test uses: where to send mail, and the mail that arrived (Mailpit's summary dicts, newest first)."""

    def __init__(self, server: CaptureServer) -> None:
        self.server = server
        assert server.client is not None
        self.client: MailpitClient = server.client

    @property
    def smtp_host(self) -> str:
        return self.server.smtp_host

    @property
    def smtp_port(self) -> int:
        return self.server.smtp_port

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def messages(self, query: str = "") -> list[dict[str, Any]]:
        """Every captured message's summary, newest first; only those matching ``query`` when one is given."""
        return self.client.search(query, limit=1000) if query else self.client.messages(limit=1000)

    def wait_for(self, query: str = "", timeout: float = 10.0) -> dict[str, Any]:
        """The newest message matching ``query`` (any message when empty), waiting for it up to ``timeout``
        seconds; raises MessageTimeout (an AssertionError) when none arrives."""
        return self.client.wait_for(query, timeout)

    def clear(self) -> None:
        self.client.delete_all()


@pytest.fixture(scope="session")
def courrier_settings() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="session")
def courrier_capture_server(tmp_path_factory: pytest.TempPathFactory,
                            courrier_settings: dict[str, Any]) -> Iterator[CaptureServer]:
    from courrier.testing.server import CaptureServer

    with CaptureServer(tmp_path_factory.mktemp("courrier"), courrier_settings) as server:
        yield server


@pytest.fixture
def courrier_capture(courrier_capture_server: CaptureServer) -> Capture:
    capture = Capture(courrier_capture_server)
    capture.clear()  # before, not after: a failed test's mail stays in the UI until the next test, for a look
    return capture
