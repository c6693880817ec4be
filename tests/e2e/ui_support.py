"""Shared set-up of the inspector's browser scenarios (tests/e2e/test_8x_ui_*): one capture server and one headless
Chromium per module, a fresh page (1400×900) per test on an emptied store, and ``shoot`` — the screenshots at
1400×900 and 390×844 that a reviewer looks at, written to tests/artifacts/ (``make screenshots`` copies two of them
to docs/)."""

from __future__ import annotations

import base64
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

__all__ = ["ARTIFACTS", "DESKTOP", "PHONE", "frame_ready", "luminance", "mail", "new_page", "seed_demo", "send",
           "shoot", "wait_for"]


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


def new_page(browser, **context_options) -> playwright_sync.Page:
    """A page in a context of its own (closed with ``page.context.close()``); light, 1400×900 unless told."""
    ctx = browser.new_context(**{"viewport": DESKTOP, "accept_downloads": True, "color_scheme": "light",
                                 **context_options})
    p = ctx.new_page()
    p.set_default_timeout(10_000)
    return p


@pytest.fixture
def page(ui, browser):
    ui.clear()
    p = new_page(browser)
    yield p
    p.context.close()


LUMINANCE_JS = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, n = 0;
  for (let i = 0; i < d.length; i += 4 * 7) { sum += 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2]; n++; }
  return sum / n / 255;
}"""


def luminance(page: playwright_sync.Page) -> float:
    """Mean relative luminance (0 black … 1 white) of what the page shows now, measured on its own screenshot."""
    png = page.screenshot()
    return page.evaluate(LUMINANCE_JS, "data:image/png;base64," + base64.b64encode(png).decode())


def frame_ready(page: playwright_sync.Page, selector: str) -> playwright_sync.Frame:
    """The message iframe's document, once ``selector`` is in it."""
    handle = page.wait_for_selector("#html-frame")
    frame = wait_for(lambda: handle.content_frame(), what="iframe")
    frame.wait_for_selector(selector)
    return frame


PNG_LOGO = bytes.fromhex(  # 16×16, one blue
    "89504e470d0a1a0a0000000d4948445200000010000000100802000000909168360000001649444154789c63d0cfbf47126218"
    "d530aa61f86a0000561b7c100386904c0000000049454e44ae426082")


def seed_demo(ui: UI) -> dict[str, str]:
    """A mailbox worth a screenshot: a shop's HTML mail, an invoice with attachments, a digest with
    List-Unsubscribe, Japanese and emoji subjects, a forged From. Returns {name: ID}."""
    ids = {}
    ids["welcome"] = send(ui, mail("Welcome aboard 🎉", "Thanks for signing up — your account is ready. 🚀",
                                   sender="Acme <hello@acme.example>"), mail_from="bounce@mail.acme.example")
    ids["cjk"] = send(ui, mail("ようこそ！アカウントが作成されました", "ご登録ありがとうございます。中文也可以：欢迎使用。",
                               sender="東京ストア <info@tokyo-store.example>"), mail_from="info@tokyo-store.example")
    ids["forged"] = send(ui, mail("Verify your account", "Please verify your account within 24 hours.",
                                  sender="The Bank <security@bank.example>"), mail_from="phisher@evil.example")
    digest = mail("Weekly digest: 3 new comments 💬", "Alice, Bob and Chen commented on your post.",
                  sender="Forum <digest@forum.example>", List_Unsubscribe="<https://forum.example/unsub?u=42>",
                  Reply_To="Forum team <team@forum.example>")
    ids["digest"] = send(ui, digest, mail_from="digest@forum.example")
    invoice = mail("Invoice INV-2026-031", "Your invoice is attached.", sender="Billing <billing@shop.example>")
    invoice.add_attachment(b"%PDF-1.4\n% invoice\n", maintype="application", subtype="pdf", filename="INV-2026-031.pdf")
    invoice.add_attachment(PNG_LOGO, maintype="image", subtype="png", filename="logo.png")
    ids["invoice"] = send(ui, invoice, mail_from="billing@shop.example")
    ids["order"] = send(ui, mail(
        "Your order #1042 has shipped 📦", "Your order #1042 is on its way. Track it at https://shop.example/t/1042",
        sender="Shop <orders@shop.example>", to="Dev Team <dev@example.test>",
        html="""<div style="font-family:sans-serif;max-width:560px;margin:auto">
        <h1 id="headline" style="color:#2f6fde">Your order is on its way 📦</h1>
        <p>Hi there, order <b>#1042</b> left our warehouse this morning.</p>
        <table style="border-collapse:collapse;width:100%"><tr><td style="padding:6px;border-bottom:1px solid #888">
        Wireless keyboard</td><td style="padding:6px;border-bottom:1px solid #888;text-align:right">€49.00</td></tr>
        <tr><td style="padding:6px">Shipping</td><td style="padding:6px;text-align:right">€4.90</td></tr></table>
        <p><a href="https://shop.example/t/1042">Track your parcel</a></p></div>"""), mail_from="bounce@shop.example")
    return ids
