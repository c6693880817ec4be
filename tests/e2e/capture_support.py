"""Helpers for the capture-mode scenarios (tests/e2e/test_1x_*): start `courrier serve --capture`, send with smtplib,
read what was kept straight from the data dir (the capture Maildir and its index)."""

from __future__ import annotations

import re
import smtplib
import time
from pathlib import Path

from courrier.capture.envelope import CapturedEnvelope, read_envelope
from courrier.capture.store import CaptureStore
from courrier.config import CaptureConfig


def capture_server(server_factory, name: str = "srv", listeners: tuple[str, ...] = ("smtp",), **capture_keys):
    """A capture server started with the `--capture` flag (the config file says mode = "server")."""
    sections = {"capture": capture_keys} if capture_keys else None
    return server_factory(name, listeners=listeners, sections=sections, serve_args=("--capture",))


def send(port: int, rcpts: list[str], body: bytes, mail_from: str = "app@sender.test", **kw) -> str:
    """Sends one message with smtplib; returns the capture ID from the 250 reply ("OK queued as <ID>")."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10, **kw) as c:
        c.ehlo("app.test")
        code, _ = c.mail(mail_from)
        assert code == 250
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = c.data(body)
        assert code == 250, text
    m = re.search(rb"queued as (\S+)", text)
    assert m, text
    return m.group(1).decode()


def files(data: Path) -> list[Path]:
    return sorted(p for sub in ("new", "cur") for p in (data / "capture" / sub).iterdir())


def envelopes(data: Path) -> dict[str, CapturedEnvelope]:
    out = {}
    for p in files(data):
        env = read_envelope(p.read_bytes())
        assert env is not None, p
        out[env.id] = env
    return out


def open_store(data: Path, expect: int | None = None, timeout: float = 10) -> CaptureStore:
    """The index as the server sees it (SQLite WAL: safe beside the running server).

    The server indexes a message just after its 250 (its own reads wait for that; another process's may not), so
    with ``expect`` this polls until the index holds that many messages."""
    store = CaptureStore(data, CaptureConfig(max_messages=0), db_path=data / "courrier.db")
    deadline = time.time() + timeout
    while expect is not None and store.counts()[0] != expect and time.time() < deadline:
        time.sleep(0.02)
    return store
