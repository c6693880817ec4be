"""Delivery Status Notifications (RFC 3464): bounces, delay notices and success reports to the envelope sender.

A DSN is a ``multipart/report; report-type=delivery-status`` (RFC 6522) message with three parts: a human
explanation, the ``message/delivery-status`` fields (per-message: Reporting-MTA, Original-Envelope-Id, Arrival-Date;
per-recipient: Original-Recipient, Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date),
and the original message — whole (``message/rfc822``) or its header only (``text/rfc822-headers``) as RET asks
(RFC 3461 §4.3). Without RET, failure reports return the whole message (up to ``MAX_RETURNED``) and delay or success
reports the header only.

Rules that stop bounce storms: a DSN is never sent for a message with the null sender ``<>`` (RFC 5321 §4.5.5,
RFC 3461 §6.2), and a DSN is itself sent from ``<>``. NOTIFY (RFC 3461 §4.1) picks which reports a recipient wants:
NEVER none; otherwise only the listed kinds; absent: failures and delays (our default, like sendmail's).

Success reports (NOTIFY=SUCCESS): ``delivered`` on final delivery into a local mailbox (RFC 3461 §5.2.3: by the MX
and submission roles as they store the message, by the queue for its local route), ``relayed`` when the next hop
does not offer DSN and so cannot report for us (§5.2.2); a next hop that offers DSN gets NOTIFY passed on and
reports itself (§5.2.1), so we send nothing. Status 2.0.0 (RFC 3463).
"""

from __future__ import annotations

import email.utils
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from courrier.mail.envelope import Envelope, Recipient

MAX_RETURNED = 10 * 1024 * 1024  # larger originals are returned as their header only

ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")  # RFC 3464 §2.3.3


@dataclass(frozen=True)
class DSNEntry:
    rcpt: Recipient
    action: str  # one of ACTIONS
    status: str  # RFC 3463 "X.Y.Z"
    diagnostic: str | None = None  # the remote reply, "550 5.1.1 No such user"
    remote_mta: str | None = None


def wants(rcpt: Recipient, kind: str) -> bool:
    """Whether this recipient's NOTIFY asks for a report of ``kind`` (FAILURE, DELAY, SUCCESS)."""
    return wants_notify(rcpt.notify, kind)


def wants_notify(notify_param: Sequence[str], kind: str) -> bool:
    """Whether a NOTIFY parameter (its values as given; empty when absent) asks for a report of ``kind``."""
    notify = [n.upper() for n in notify_param]
    if not notify:
        return kind in ("FAILURE", "DELAY")
    if "NEVER" in notify:
        return False
    return kind in notify


def success_entries(rcpts: list[Recipient], action: str = "delivered",
                    diagnostic: str | None = None, remote_mta: str | None = None) -> list[DSNEntry]:
    """The entries of a success report for the recipients that asked for one (NOTIFY=SUCCESS), status 2.0.0."""
    return [DSNEntry(r, action, "2.0.0", diagnostic, remote_mta) for r in rcpts if wants(r, "SUCCESS")]


def should_report(env: Envelope) -> bool:
    """Never report on a message from the null sender: that is how bounce loops are avoided."""
    return not env.mail_from.is_null


def _header_section(message: bytes) -> bytes:
    end = message.find(b"\r\n\r\n")
    return message if end < 0 else message[: end + 2]


def _subject(message: bytes) -> str:
    for line in _header_section(message).split(b"\r\n"):
        if line[:8].lower() == b"subject:":
            return line[8:].strip().decode("utf-8", "replace")[:200]
    return ""


def _xtext_or_plain(orcpt: str | None) -> str | None:
    if not orcpt:
        return None
    kind, _, addr = orcpt.partition(";")
    return f"{kind};{addr}" if addr else f"rfc822;{orcpt}"


def _addr_type(address: str) -> str:
    return "rfc822" if address.isascii() else "utf-8"  # RFC 6533 §3


def delivery_status(hostname: str, env: Envelope, entries: list[DSNEntry], now: float,
                    retry_until: float | None = None) -> str:
    """The ``message/delivery-status`` body (RFC 3464 §2.1): per-message fields, then one block per recipient."""
    lines = [f"Reporting-MTA: dns; {hostname}"]
    if env.envid:
        lines.append(f"Original-Envelope-Id: {env.envid}")
    lines.append(f"Arrival-Date: {email.utils.formatdate(env.received_at)}")
    out = "\r\n".join(lines) + "\r\n"
    for e in entries:
        block = []
        orcpt = _xtext_or_plain(e.rcpt.orcpt)
        if orcpt:
            block.append(f"Original-Recipient: {orcpt}")
        block.append(f"Final-Recipient: {_addr_type(str(e.rcpt.address))}; {e.rcpt.address}")
        block.append(f"Action: {e.action}")
        block.append(f"Status: {e.status}")
        if e.remote_mta:
            block.append(f"Remote-MTA: dns; {e.remote_mta}")
        if e.diagnostic:
            block.append(f"Diagnostic-Code: smtp; {' '.join(e.diagnostic.split())}")
        block.append(f"Last-Attempt-Date: {email.utils.formatdate(now)}")
        if e.action == "delayed" and retry_until:
            block.append(f"Will-Retry-Until: {email.utils.formatdate(retry_until)}")
        out += "\r\n" + "\r\n".join(block) + "\r\n"
    return out


_EXPLAIN = {
    "failed": ("Undelivered Mail Returned to Sender",
               "Your message could not be delivered to one or more recipients. It has been given up on.\r\n"
               "The details are below and in the attached delivery report."),
    "delayed": ("Delayed Mail (still being retried)",
                "Your message has not been delivered yet to one or more recipients. This is only a warning:\r\n"
                "delivery will be retried, and you will be told if it finally fails."),
    "delivered": ("Successful Mail Delivery Report",
                  "Your message was delivered to the recipients below, as you asked to be told."),
    "relayed": ("Relayed Mail Delivery Report",
                "Your message was passed on to the recipients' mail servers below, as you asked to be told.\r\n"
                "Those servers do not report delivery status, so this is the last report you will receive."),
}


def build_dsn(*, hostname: str, env: Envelope, message: bytes, entries: list[DSNEntry],
              now: float | None = None, lifetime: float | None = None) -> bytes:
    """The DSN message (CRLF line endings) to send from ``<>`` to ``env.mail_from``."""
    if not entries:
        raise ValueError("a DSN needs at least one recipient entry")
    now = now or time.time()
    retry_until = env.received_at + lifetime if lifetime is not None else None
    actions = {e.action for e in entries}
    kind = actions.pop() if len(actions) == 1 and entries[0].action in _EXPLAIN else "delivered"
    subject, explanation = _EXPLAIN[kind]
    boundary = f"=_courrier_{secrets.token_hex(12)}"
    report = [
        f"This is the mail system at host {hostname}.",
        "",
        explanation,
        "",
    ]
    for e in entries:
        line = f"<{e.rcpt.address}>: {e.action}"
        if e.diagnostic:
            line += f" ({e.remote_mta + ' said: ' if e.remote_mta else ''}{' '.join(e.diagnostic.split())})"
        report.append(line)
    orig_subject = _subject(message)
    if orig_subject:
        report += ["", f"Original subject: {orig_subject}"]

    ret = (env.ret or "").upper()
    full = (ret == "FULL") or (not ret and kind == "failed")
    if full and len(message) > MAX_RETURNED:
        full = False
    original = message if full else _header_section(message)
    original_type = "message/rfc822" if full else "text/rfc822-headers"
    eightbit = not original.isascii()

    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{env.mail_from}>",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(now, localtime=False)}",
        f"Message-ID: <{secrets.token_hex(10)}.dsn@{hostname}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5: no auto-replies to this
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "Content-Transfer-Encoding: 8bit" if eightbit else "Content-Transfer-Encoding: 7bit",
    ]
    parts = [
        "\r\n".join(head).encode() + b"\r\n\r\n",
        b"This is a MIME-encapsulated message.\r\n\r\n",
        f"--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n".encode(),
        ("\r\n".join(report) + "\r\n\r\n").encode("utf-8"),
        f"--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        .encode(),
        delivery_status(hostname, env, entries, now, retry_until).encode("utf-8") + b"\r\n",
        f"--{boundary}\r\nContent-Description: {'Undelivered message' if full else 'Message headers'}\r\n"
        f"Content-Type: {original_type}\r\n"
        f"{'Content-Transfer-Encoding: 8bit' + chr(13) + chr(10) if eightbit else ''}\r\n".encode(),
        original if original.endswith(b"\r\n") else original + b"\r\n",
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)
