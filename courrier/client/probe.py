"""``courrier probe``: the SMTP story's telnet session, automated and read out.

It connects, reads the banner, says EHLO, lists the capabilities and AUTH mechanisms, optionally upgrades with
STARTTLS (RFC 3207) and reports the TLS version, cipher and certificate, then asks the open-relay question the
way an abuser would: unauthenticated, ``MAIL FROM`` a foreign sender, ``RCPT TO`` a foreign recipient. A 2xx to
that RCPT means the server would relay for anyone (RFC 5321 §3.6.2 says it must not, RFC 2505 §2 why). It never
sends DATA: it says RSET and QUIT, so nothing is ever delivered by probing.
"""

from __future__ import annotations

import datetime
import ssl
import time
from dataclasses import dataclass, field

from cryptography import x509

from courrier.client.smtpclient import ClientError, ServerReply, SMTPClient, SMTPReplyError, Trace
from courrier.client.submit import helo_name

EXIT_OK, EXIT_UNREACHABLE, EXIT_OPEN_RELAY = 0, 1, 3
RELAY_FROM = "relay-probe@example.org"  # RFC 2606 reserved names: never anyone's real mail domain
RELAY_TO = "relay-probe@example.net"


@dataclass
class CertInfo:
    subject: str
    issuer: str
    not_after: datetime.datetime
    self_signed: bool

    @property
    def days_left(self) -> int:
        return (self.not_after - datetime.datetime.now(datetime.UTC)).days


@dataclass
class TLSReport:
    version: str
    cipher: str
    bits: int
    cert: CertInfo | None


@dataclass
class ProbeReport:
    target: str
    implicit_tls: bool = False
    relay_from: str = RELAY_FROM
    relay_to: str = RELAY_TO
    connect_ms: float | None = None
    banner: ServerReply | None = None
    ehlo: ServerReply | None = None
    capabilities: dict[str, str] = field(default_factory=dict)
    tls: TLSReport | None = None
    capabilities_tls: dict[str, str] | None = None
    relay_mail: ServerReply | None = None
    relay_rcpt: ServerReply | None = None
    error: str | None = None  # unreachable, or the conversation broke before a verdict
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def _auth(caps: dict[str, str] | None) -> list[str] | None:
        return None if caps is None else caps.get("AUTH", "").upper().split()

    @property
    def auth_before_tls(self) -> list[str] | None:
        """None with implicit TLS: there is no "before"."""
        return None if self.implicit_tls else (self._auth(self.capabilities) or [])

    @property
    def auth_after_tls(self) -> list[str] | None:
        return self._auth(self.capabilities_tls)

    @property
    def open_relay(self) -> bool:
        return self.relay_rcpt is not None and self.relay_rcpt.ok

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return f"unreachable: {self.error}"
        if self.open_relay:
            return f"OPEN RELAY: {self.relay_to} accepted from an unauthenticated client ({self.relay_rcpt})"
        if self.relay_mail is not None and not self.relay_mail.ok:
            return f"not an open relay (MAIL FROM refused without authentication: {self.relay_mail})"
        return f"not an open relay (foreign recipient refused: {self.relay_rcpt})"

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_UNREACHABLE
        return EXIT_OPEN_RELAY if self.open_relay else EXIT_OK


def cert_info(der: bytes | None) -> CertInfo | None:
    if not der:
        return None
    try:
        c = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return CertInfo(subject=c.subject.rfc4514_string(), issuer=c.issuer.rfc4514_string(),
                    not_after=c.not_valid_after_utc, self_signed=c.subject == c.issuer)


def tls_report(tls: ssl.SSLObject) -> TLSReport:
    name, _proto, bits = tls.cipher() or ("?", "?", 0)
    return TLSReport(version=tls.version() or "?", cipher=name, bits=bits or 0,
                     cert=cert_info(tls.getpeercert(binary_form=True)))


def _probe_context() -> ssl.SSLContext:
    """Accepts any certificate: the probe reports what it sees rather than refusing to look."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def probe(host: str, port: int, *, starttls: bool = False, implicit_tls: bool = False, timeout: float = 15.0,
                helo: str | None = None, relay_from: str = RELAY_FROM, relay_to: str = RELAY_TO,
                trace: Trace | None = None) -> ProbeReport:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    rep = ProbeReport(target, implicit_tls, relay_from, relay_to)
    t0 = time.monotonic()
    try:
        c = await SMTPClient.connect(host, port, implicit_tls=_probe_context() if implicit_tls else None,
                                     timeout=timeout, trace=trace)
    except SMTPReplyError as e:
        rep.banner, rep.error = e.reply, f"the server refuses to talk: {e.reply}"
        return rep
    except ClientError as e:
        rep.error = str(e)
        return rep
    rep.connect_ms = (time.monotonic() - t0) * 1000
    rep.banner = c.greeting
    try:
        if c.tls is not None:
            rep.tls = tls_report(c.tls)
        name = helo or helo_name()
        rep.ehlo = await c.ehlo(name)
        rep.capabilities = dict(c.extensions)
        if implicit_tls:
            rep.capabilities_tls = rep.capabilities
        if starttls:
            if c.has("STARTTLS"):
                await c.starttls(_probe_context())
                assert c.tls is not None
                rep.tls = tls_report(c.tls)
                await c.ehlo(name)
                rep.capabilities_tls = dict(c.extensions)
            else:
                rep.notes.append("STARTTLS asked for but not offered: the relay test ran in clear text")
        # The open-relay question, as an unauthenticated stranger would ask it (RFC 5321 §3.6.2, §7.1).
        rep.relay_mail = await c.command(f"MAIL FROM:<{relay_from}>")
        if rep.relay_mail.ok:
            rep.relay_rcpt = await c.command(f"RCPT TO:<{relay_to}>")
            await c.rset()  # never DATA: nothing is delivered by probing
        await c.quit()
    except SMTPReplyError as e:
        rep.error = f"{e.step} refused: {e.reply}"
        await c.close()
    except ClientError as e:
        rep.error = str(e)
        await c.close()
    return rep
