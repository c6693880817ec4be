"""Shared set-up of the inspector's browser scenarios (tests/e2e/test_8x_ui_*): one capture server and one headless
Chromium per module, a fresh page (1400×900) per test on an emptied store, and ``shoot`` — the screenshots at
1400×900 and 390×844 that a reviewer looks at, written to tests/artifacts/ (``make screenshots`` copies two of them
to docs/)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright import sync_api as playwright_sync

from tests.e2e.capture_support import send as capture_send
from tests.e2e.test_65_browser import ARGS, CHROMIUM, wait_for
from tests.support import Server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}

__all__ = ["ARTIFACTS", "DESKTOP", "PHONE", "mail", "send", "shoot", "wait_for"]


class UI:
    """The module's server: its base URL, its SMTP port, and an API client."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.base = f"http://127.0.0.1:{srv.ports['http']}"
        self.smtp = srv.ports["smtp"]
        self.api = httpx.Client(base_url=self.base, timeout=10)

    def clear(self) -> None:
        self.api.delete("/api/v1/messages").raise_for_status()

    def ids(self, query: str = "") -> list[str]:
        r = self.api.get("/api/v1/search", params={"query": query}) if query else self.api.get("/api/v1/messages")
        return [m["ID"] for m in r.json()["messages"]]


def mail(subject: str, body: str = "hello", *, sender: str = "App <app@shop.example>", to: str = "dev@example.test",
         html: str | None = None, **headers: str) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    if html is not None:
        m.add_alternative(html, subtype="html")
    return m


def send(ui: UI, msg: EmailMessage, mail_from: str = "app@shop.example", rcpts: list[str] | None = None) -> str:
    """Sends over SMTP and returns the capture ID from the 250 reply."""
    to = rcpts or [a.strip().rpartition("<")[2].rstrip(">") for a in str(msg["To"]).split(",")]
    return capture_send(ui.smtp, to, msg.as_bytes(), mail_from)


def shoot(page: playwright_sync.Page, name: str) -> None:
    """``name``-desktop.png at 1400×900 and ``name``-phone.png at 390×844; the page is left at 1400×900."""
    ARTIFACTS.mkdir(exist_ok=True)
    for tag, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # layout and the iframe settle
        page.screenshot(path=str(ARTIFACTS / f"{name}-{tag}.png"))


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    d = tmp_path_factory.mktemp("ui")
    srv = Server(d, listeners=("smtp", "http"), capture=True).start()
    u = UI(srv)
    yield u
    u.api.close()
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(ui, browser):
    ui.clear()
    ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    p = ctx.new_page()
    p.set_default_timeout(10_000)
    yield p
    ctx.close()
