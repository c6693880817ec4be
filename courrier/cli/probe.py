"""``courrier probe HOST[:PORT] [--starttls]``: banner, capabilities, TLS, AUTH, open-relay verdict.

Exit status: 0 not an open relay, 3 open relay, 1 unreachable (CONTRACT.md).
"""

from __future__ import annotations

import asyncio
import sys

import click

from courrier.cli import common_options, main
from courrier.client.probe import ProbeReport, probe
from courrier.config import Config, parse_hostport


def _line(label: str, value: str) -> None:
    click.echo(f"{label:<20}{value}")


def _caps(caps: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}".strip() for k, v in caps.items()) or "(none: HELO only)"


def print_report(r: ProbeReport) -> None:
    _line("target", r.target + (f"  (connected in {r.connect_ms:.0f} ms)" if r.connect_ms is not None else ""))
    if r.banner is not None:
        _line("banner", str(r.banner))
    if r.ehlo is not None:
        _line("EHLO", str(r.ehlo).split(" / ")[0])
        _line("capabilities", _caps(r.capabilities))
        if r.auth_before_tls is not None:
            _line("STARTTLS", "offered" if "STARTTLS" in r.capabilities else "not offered")
            _line("AUTH before TLS", " ".join(r.auth_before_tls) or "none offered")
    if r.tls is not None:
        _line("TLS", f"{r.tls.version}, cipher {r.tls.cipher} ({r.tls.bits} bits)")
        cert = r.tls.cert
        if cert is not None:
            _line("cert subject", cert.subject)
            _line("cert issuer", cert.issuer + ("  (self-signed)" if cert.self_signed else ""))
            expiry = cert.not_after.strftime("%Y-%m-%d %H:%M UTC")
            left = cert.days_left
            _line("cert expires", f"{expiry} ({'EXPIRED' if left < 0 else f'{left} days left'})")
    if r.capabilities_tls is not None:
        if not r.implicit_tls:
            _line("capabilities (TLS)", _caps(r.capabilities_tls))
        _line("AUTH after TLS", " ".join(r.auth_after_tls or []) or "none offered")
    if r.relay_mail is not None:
        _line("relay test", f"MAIL FROM:<{r.relay_from}> → {r.relay_mail}")
    if r.relay_rcpt is not None:
        _line("", f"RCPT TO:<{r.relay_to}> → {r.relay_rcpt}  (no DATA sent)")
    for note in r.notes:
        _line("note", note)
    _line("verdict", r.verdict)


@main.command("probe")
@click.argument("target", metavar="HOST[:PORT]")
@click.option("--starttls", is_flag=True, help="Upgrade with STARTTLS and report the TLS session and certificate.")
@click.option("--tls", "implicit_tls", is_flag=True, help="TLS from the first byte (RFC 8314), e.g. port 465.")
@click.option("--helo", metavar="NAME", help="Name to give in EHLO (default: this machine's host name).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=15, show_default=True,
              help="Seconds to wait for the connection and each reply.")
@click.option("--trace", is_flag=True, help="Also print the SMTP dialogue (C:/S: lines).")
@common_options
def probe_cmd(cfg: Config, target: str, starttls: bool, implicit_tls: bool, helo: str | None, timeout: float,
              trace: bool) -> None:
    """Inspect an SMTP server: banner, EHLO, TLS, AUTH, and whether it is an open relay.

    Exit status: 0 not an open relay, 3 open relay, 1 unreachable. Never sends DATA.
    """
    if starttls and implicit_tls:
        raise click.UsageError("--starttls and --tls exclude each other")
    try:
        hp = parse_hostport(target, default_port=465 if implicit_tls else 25)
    except ValueError as e:
        raise click.UsageError(str(e)) from None

    def show(direction: str, line: str) -> None:
        click.echo(f"{direction}: {line}" if direction in "CS" else f"*  {line}")

    report = asyncio.run(probe(hp.host, hp.port, starttls=starttls, implicit_tls=implicit_tls, timeout=timeout,
                               helo=helo, trace=show if trace else None))
    print_report(report)
    if report.error is not None:
        click.echo(f"courrier: {report.target} unreachable: {report.error}", err=True)
    sys.exit(report.exit_code)
