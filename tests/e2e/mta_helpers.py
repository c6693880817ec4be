"""Helpers for the outbound-MTA scenarios (tests/e2e/test_4x_*): two courrier instances, ``a.test`` sending and
``b.test`` receiving, behind the dnslib fake DNS (tests/dnsfake.py), with retry durations shrunk to seconds."""

from __future__ import annotations

import email
import email.policy
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from tests.dnsfake import FakeDNS

FAST = {"retry_first": "1s", "retry_max": "2s", "max_lifetime": "1h", "delay_notice": "1h", "connect_timeout": "2s"}


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def make_receiver(server_factory: Any, name: str = "b", domain: str = "b.test", users: tuple[str, ...] = ("bob",)):
    b = server_factory(name, listeners=("smtp",), domains=(domain,), hostname=f"mx.{domain}")
    for u in users:
        b.add_user(f"{u}@{domain}")
    return b


def make_sender(server_factory: Any, dns: FakeDNS, mx_port: int, name: str = "a", domain: str = "a.test",
                users: tuple[str, ...] = ("alice",), **delivery: Any):
    a = server_factory(name, listeners=("smtp", "submission"), domains=(domain,), hostname=f"mx.{domain}",
                       sections={"delivery": {"nameservers": [dns.address], "mx_port": mx_port, **FAST, **delivery}})
    for u in users:
        a.add_user(f"{u}@{domain}")
    return a


def point_mx(dns: FakeDNS, domain: str, ip: str = "127.0.0.1") -> None:
    dns.set(domain, {"MX": [(10, f"mx.{domain}")]})
    dns.set(f"mx.{domain}", {"A": [ip]})


def message(sender: str, to: list[str], subject: str, body: str = "hello\n", **headers: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(to)
    m["Subject"] = subject
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m


def submit(a: Any, sender: str, to: list[str], subject: str, body: str = "hello\n", password: str = "secret",
           mail_options: tuple[str, ...] = (), rcpt_options: tuple[str, ...] = ()) -> dict[str, Any]:
    """Submits one message on a's submission port with AUTH (loopback: no TLS needed), as an MUA does."""
    with smtplib.SMTP("127.0.0.1", a.ports["submission"], timeout=30) as c:
        c.ehlo("mua.test")
        c.login(sender, password)
        return c.sendmail(sender, to, message(sender, to, subject, body).as_bytes(),
                          mail_options=list(mail_options), rcpt_options=list(rcpt_options))


def inbox(server: Any, address: str) -> list[email.message.EmailMessage]:
    """The account's INBOX, parsed, whatever the server's store (tests/support.py ``Server.stored``)."""
    return [email.message_from_bytes(m.data, policy=email.policy.default) for m in server.stored(address)]


def subjects(server: Any, address: str) -> list[str]:
    return [str(m["Subject"]) for m in inbox(server, address)]
