"""The messages Sieve sends or files by itself: the vacation reply (RFC 5230 §5, with RFC 3834's fields), the
rejection sent when a reject could not be said at SMTP time (RFC 5429 §2.1.1: an MDN, RFC 8098), and the note an
account finds in its INBOX when its script failed.

Also the rules deciding whether a vacation reply may go at all (RFC 5230 §4.5-4.6, RFC 3834 §2): never to ``<>``,
to mailing lists, to automatic mail, or for a message not addressed to the account.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from email.header import Header
from email.utils import format_datetime, formataddr, localtime

from courrier.sieve.interp import Vacation
from courrier.sieve.message import MessageView

# RFC 3834 §2 / RFC 5230 §4.6: a sender that is a list or a robot never gets an automatic reply
_ROBOT_SENDERS = re.compile(r"^(owner-|.*-request$|mailer-daemon$|listserv$|majordomo$|.*-bounces?(\+|$)|"
                            r"postmaster$|noreply$|no-reply$|do-not-reply$)", re.I)
_LIST_FIELDS = ("list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner",
                "list-archive")


def _header_text(value: str) -> str:
    """A header field value, RFC 2047-encoded when it is not ASCII; line breaks never pass through."""
    value = re.sub(r"[\r\n]+", " ", value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def vacation_refusal(msg: MessageView, sender: str, account: str, v: Vacation) -> str | None:
    """Why no vacation reply goes for this message (None: one may go)."""
    if not sender:
        return "null sender"  # RFC 5230 §4.6
    local = sender.rpartition("@")[0]
    if _ROBOT_SENDERS.match(local):
        return "sender looks automatic"
    auto = " ".join(msg.raw_header("auto-submitted")).strip().lower()
    if auto and not auto.startswith("no"):
        return "Auto-Submitted"  # RFC 3834 §2
    if any(p.strip().lower() in ("bulk", "list", "junk") for p in msg.raw_header("precedence")):
        return "Precedence"
    if any(msg.raw_header(f) for f in _LIST_FIELDS) or msg.raw_header("x-auto-response-suppress"):
        return "mailing list"
    mine = {account.lower(), *(a.lower() for a in v.addresses)}
    to = {a.lower() for f in ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
          for a in msg.addresses(f)}
    if not mine & to:
        return "not addressed to the account"  # RFC 5230 §4.5
    if sender.lower() in mine:
        return "sender is the account"
    return None


def vacation_handle(v: Vacation) -> str:
    """RFC 5230 §4.2: the :handle, or one derived from the reply's arguments."""
    if v.handle:
        return v.handle
    return hashlib.sha256("\0".join([v.reason, v.subject or "", v.from_ or "", str(v.mime)]).encode()).hexdigest()[:24]


def vacation_reply(msg: MessageView, account: str, v: Vacation, hostname: str) -> bytes:
    """RFC 5230 §5: the reply's fields (RFC 3834 §3) and body."""
    subject = v.subject
    if subject is None:
        orig = (msg.header("subject") or [""])[0]
        subject = f"Auto: {orig}" if orig else "Automated reply"  # RFC 5230 §5.5 / RFC 3834 §3.1.5
    reply_to = (msg.addresses("reply-to") or msg.addresses("from") or [""])[0]
    from_ = v.from_ or account
    msgid = (msg.raw_header("message-id") or [""])[0].strip()
    refs = " ".join((msg.raw_header("references") or [""])[0].split() + ([msgid] if msgid else []))
    lines = [
        f"From: {_header_text(from_)}",
        f"To: {reply_to}",
        f"Subject: {_header_text(subject)}",
        f"Date: {format_datetime(localtime())}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied (vacation)",  # RFC 3834 §5
    ]
    if msgid:
        lines.append(f"In-Reply-To: {msgid}")
    if refs:
        lines.append(f"References: {refs}")
    lines.append("MIME-Version: 1.0")
    if v.mime:  # RFC 5230 §4.8: the reason is a MIME entity already
        body = v.reason.replace("\r\n", "\n").replace("\n", "\r\n")
        return ("\r\n".join(lines) + "\r\n" + body).encode("utf-8")
    lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    body = v.reason.replace("\r\n", "\n").replace("\n", "\r\n")
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


def rejection_mdn(msg: MessageView, account: str, sender: str, reason: str, hostname: str) -> bytes:
    """RFC 5429 §2.1.1 / RFC 8098 §3: a multipart/report MDN saying the message was deleted, with ``reason``
    as its human-readable part and the original's header section attached."""
    boundary = f"=_{uuid.uuid4().hex}"
    subject = (msg.header("subject") or [""])[0]
    msgid = (msg.raw_header("message-id") or [""])[0].strip()
    head = msg.head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").decode("utf-8", "replace")
    text = reason.replace("\r\n", "\n").replace("\n", "\r\n")
    parts = [
        f"From: Mail Delivery Subsystem <MAILER-DAEMON@{hostname}>",
        f"To: {sender}",
        f"Subject: {_header_text('Rejected: ' + subject if subject else 'Message rejected')}",
        f"Date: {format_datetime(localtime())}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied (rejected)",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=disposition-notification; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"Your message to {account} was automatically rejected:",
        text,
        "",
        f"--{boundary}",
        "Content-Type: message/disposition-notification",
        "",
        f"Reporting-UA: {hostname}; courrier Sieve",
        f"Final-Recipient: rfc822; {account}",
        *([f"Original-Message-ID: {msgid}"] if msgid else []),
        "Disposition: automatic-action/MDN-sent-automatically; deleted",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        head,
        "",
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(parts).encode("utf-8")


def error_report(account: str, script: str, error: str, hostname: str) -> bytes:
    """The note filed in the account's INBOX when its script failed (once per script version)."""
    lines = [
        f"From: {formataddr(('Mail filter', f'MAILER-DAEMON@{hostname}'))}",
        f"To: {account}",
        f"Subject: Your mail filter (Sieve script {_header_text(repr(script))}) failed",
        f"Date: {format_datetime(localtime())}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"Your Sieve script {script!r} failed on a message received at "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}:",
        "",
        f"    {error}",
        "",
        "The message was delivered to your INBOX as if you had no script. Until the script changes, further",
        "failures are delivered the same way without another report.",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


