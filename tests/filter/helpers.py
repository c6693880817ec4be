"""What the filter tests share: a hop, an envelope and a spooled message."""

from __future__ import annotations

import io

from courrier.mail.envelope import Envelope, Hop
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import parse_address

HOP = Hop(by="mx.example.test", listener="smtp", protocol="ESMTP", client_ip="192.0.2.7", client_port=40000,
          helo="client.example.net")


def envelope() -> Envelope:
    return Envelope(mail_from=parse_address("sender@example.net"))


def message(body: str, headers: str = "", subject: str = "hello") -> ReceivedMessage:
    text = (f"From: Sender <sender@example.net>\r\nTo: user@example.test\r\nSubject: {subject}\r\n"
            f"Date: Fri, 05 Dec 2025 08:00:00 +0000\r\nMessage-ID: <m.{abs(hash(body))}@example.net>\r\n"
            f"{headers}\r\n{body}\r\n")
    data = text.encode()
    return ReceivedMessage(io.BytesIO(data), len(data))
