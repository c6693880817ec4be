"""Shared setup of the submission scenarios (tests/e2e/test_30..39): a real ``courrier serve`` playing the MSA.

``trust_loopback = false`` everywhere, so 127.0.0.1 is treated like any remote client: AUTH only after TLS.
Accounts: bob (alias robert), alice, and app (``--send-as-any``), all in example.test.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from tests.support import Server, Stored

PASSWORDS = {"bob@example.test": "bob-secret", "alice@example.test": "alice-secret", "app@example.test": "app-secret"}


def msa(tmp: Path, *, listeners: tuple[str, ...] = ("submission", "submissions"), limits: dict[str, Any] | None = None,
        sections: dict[str, dict[str, Any]] | None = None, top: dict[str, Any] | None = None) -> Server:
    """A started MSA with the three accounts; the caller stops it."""
    sec = {"limits": limits or {}, **(sections or {})}
    s = Server(tmp, listeners=listeners, domains=("example.test",), top={"trust_loopback": False, **(top or {})},
               sections=sec)
    # The accounts are made through the library the `courrier user` commands use (scenario 35 drives the CLI
    # itself): four CLI start-ups per scenario would cost seconds of interpreter start for nothing.
    with s.accounts() as accounts:  # the store's: SQLite in the data dir, or the PostgreSQL database
        accounts.add("bob@example.test", PASSWORDS["bob@example.test"])
        accounts.add("alice@example.test", PASSWORDS["alice@example.test"])
        accounts.add("app@example.test", PASSWORDS["app@example.test"], send_as_any=True)
        accounts.add_alias("bob@example.test", "robert@example.test")
    return s.start()


def insecure_context() -> ssl.SSLContext:
    """Clients accept the generated self-signed certificate (the tests check TLS happens, not the PKI)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_for_messages(server: Server, address: str, n: int, timeout: float = 10) -> list[Stored]:
    """The account's INBOX messages once there are at least ``n`` (polled with a deadline), whatever the store."""
    return server.wait_stored(address, n, timeout=timeout)


def messages(server: Server, address: str, folder: str = "INBOX") -> list[bytes]:
    """The bytes of the messages stored in the account's folder (LF, as stored), whatever the store."""
    return [m.data for m in server.stored(address, folder)]
