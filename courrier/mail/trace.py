"""Trace header fields (RFC 5321 §4.4): ``Received:``, ``Return-Path:`` and ``Delivered-To:``.

A ``Received:`` line is written once per receipt — by whoever took the message from a client (the MX, submission
and capture roles, the queue's intake for the web release) — from that receipt's ``Hop``. Delivery out of the queue
is no receipt: it writes ``Return-Path:`` and ``Delivered-To:`` only, the ``Received:`` line being already in the
spooled message (Postfix's local(8) does the same). The lines are LF-terminated; callers that need CRLF convert.
"""

from __future__ import annotations

import email.utils

from courrier.mail.envelope import Envelope, Hop


def protocol(hop: Hop, env: Envelope) -> str:
    """The ``with`` keyword: the hop's, made UTF8SMTP, UTF8SMTPS, UTF8SMTPA… for an SMTPUTF8 transaction
    (RFC 6531 §3.7.3)."""
    if env.smtputf8 and hop.protocol:
        return "UTF8" + hop.protocol.replace("ESMTP", "SMTP")
    return hop.protocol


def received(hop: Hop, env: Envelope, for_rcpt: str | None) -> str:
    """RFC 5321 §4.4 Received: line, with the TLS version and cipher as Postfix writes them.

    Without a client address (not received over the network) there is no ``from`` clause: only our host, the way
    a local pickup is traced, so that no peer is made up."""
    with_ = f" with {protocol(hop, env)}" if hop.protocol else ""
    if hop.client_ip is None:
        lines = [f"Received: by {hop.by} (courrier {hop.listener}){with_} id {env.queue_id}"]
    else:
        helo = hop.helo or "unknown"
        ip = hop.client_ip
        ip_lit = f"IPv6:{ip}" if ":" in ip else ip
        lines = [f"Received: from {helo} ({helo} [{ip_lit}])"]
        if hop.tls:
            bits = f" ({hop.tls.bits}/{hop.tls.bits} bits)" if hop.tls.bits else ""
            lines.append(f"\t(using {hop.tls.version} with cipher {hop.tls.cipher}{bits})")
        if hop.user:
            lines.append(f"\t(authenticated sender: {hop.user})")
        lines.append(f"\tby {hop.by} (courrier){with_} id {env.queue_id}")
    date = email.utils.formatdate(env.received_at, localtime=False)
    lines.append(f"\tfor <{for_rcpt}>; {date}" if for_rcpt else f"\t; {date}")
    return "\n".join(lines) + "\n"


def return_path(env: Envelope) -> str:
    """RFC 5321 §4.4: the envelope sender, written at final delivery."""
    return f"Return-Path: <{env.mail_from}>\n"


def delivery_trace(env: Envelope, hop: Hop | None, mailbox: str, original_rcpt: str) -> bytes:
    """What final delivery prepends to one mailbox's copy: Return-Path, Delivered-To, and the Received line of
    ``hop`` when delivery is also the receipt (the MX and submission roles); none for mail out of the queue."""
    text = return_path(env) + f"Delivered-To: {mailbox}\n"
    if hop is not None:
        text += received(hop, env, original_rcpt)
    return text.encode("utf-8")
