"""``courrier check FILE.eml``: a forgery report for any message — who it claims to be from, and who vouches for it.

Each identity (HELO, MAIL FROM, header From, Sender, Return-Path, DKIM d=), each check (SPF for HELO and MAIL FROM,
every DKIM signature, DMARC) with its result and the DNS records it used, the alignment, and a one-line verdict.
Exit status (CONTRACT): 0 authentic (DMARC pass), 3 forged (DMARC fail), 4 unverifiable (none, temperror, permerror);
1 when the file cannot be read.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from typing import TYPE_CHECKING

import click

from courrier.cli import Fail, common_options, main
from courrier.config import Config
from courrier.dns import parse_nameserver

if TYPE_CHECKING:  # imported when the command runs: pyspf, dkimpy and the PSL stay out of other commands' start
    from courrier.mailauth.report import AuthReport
    from courrier.mailauth.spf import SPFResult

EXIT = {"authentic": 0, "forged": 3}  # courrier.mailauth.report.AUTHENTIC, FORGED
UNVERIFIABLE_EXIT = 4
MAX_FILE = 64 << 20


def _spf_line(label: str, r: SPFResult | None) -> str:
    if r is None:
        return f"  {label:<34} not checked (give --client-ip)"
    return f"  {label:<34} {r.result:<10} {r.comment}"


def _render(path: str, r: AuthReport) -> str:
    ids = r.identities
    dash = "-"
    lines = [f"courrier check: {path}", "", "Identities"]
    rows = [
        ("client IP", ids.client_ip or "- (not given: SPF cannot be checked)"),
        ("HELO", ids.helo or dash),
        ("MAIL FROM (envelope)", dash if ids.mail_from is None else f"<{ids.mail_from}>"),
        ("Return-Path", ", ".join(ids.return_path) or dash),
        ("header From", ", ".join(ids.header_from) or "- (none)"),
        ("Sender", ", ".join(ids.sender) or dash),
        ("DKIM d=", ", ".join(sorted({d.domain for d in r.dkim if d.domain})) or dash),
    ]
    lines += [f"  {k:<22} {v}" for k, v in rows]
    lines.append(f"  {'From vs envelope':<22} {r.envelope_vs_from}")
    lines += ["", "SPF (RFC 7208)"]
    lines.append(_spf_line(f"HELO {ids.helo or '-'}", r.spf_helo))
    if r.spf is not None and r.spf.identity == "helo":
        lines.append("  MAIL FROM <> (null sender): SPF uses the HELO identity")
    else:
        lines.append(_spf_line(f"MAIL FROM {ids.mail_from or '-'}", r.spf))
    if r.spf is not None and r.spf.record:
        lines.append(f"  {'':<34} record of {r.spf.domain}: \"{r.spf.record}\"")
    lines += ["", "DKIM (RFC 6376)"]
    if not r.dkim:
        lines.append("  none: the message carries no DKIM-Signature")
    for d in r.dkim:
        lines.append(f"  d={d.domain} s={d.selector} a={d.algorithm:<16} {d.result:<10} {d.reason}")
    lines += ["", "DMARC (RFC 7489)"]
    dm = r.dmarc
    lines.append(f"  From domain {dm.from_domain or '-'}: {dm.result}")
    if dm.record is not None:
        lines.append(f"  policy p={dm.policy} (record at _dmarc.{dm.record.domain}: \"{dm.record.raw}\")")
        spf_al = "yes" if dm.spf_aligned else "no"
        dkim_al = f"yes ({dm.dkim_aligned})" if dm.dkim_aligned else "no"
        lines.append(f"  alignment: SPF {spf_al} (aspf={dm.record.aspf}), DKIM {dkim_al} (adkim={dm.record.adkim})")
    lines.append(f"  {dm.reason}")
    if r.lookups:
        lines += ["", "DNS records used"]
        for q in r.lookups:
            answer = q.error or (" | ".join(q.answers) if q.answers else "(no record)")
            lines.append(f"  {q.name} {q.rdtype}: {answer}")
    lines += ["", f"Verdict: {r.verdict.upper()} — {r.why}"]
    return "\n".join(lines)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--client-ip", metavar="IP", help="The IP address that delivered the message (for SPF).")
@click.option("--helo", metavar="NAME", help="The name it gave in HELO/EHLO.")
@click.option("--mail-from", metavar="ADDR",
              help="The envelope sender (default: the message's Return-Path; \"\" for the null sender).")
@click.option("--nameserver", "nameservers", multiple=True, metavar="IP[:PORT]",
              help="Ask this nameserver (repeatable; default: [delivery] nameservers, else the system's).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common_options
def check(cfg: Config, file: str, client_ip: str | None, helo: str | None, mail_from: str | None,
          nameservers: tuple[str, ...], as_json: bool) -> None:
    """Report whether FILE (an .eml, or - for stdin) is authentic, forged or unverifiable: SPF, DKIM, DMARC."""
    try:
        servers = [parse_nameserver(n) for n in nameservers] or \
                  [(ns.host, ns.port) for ns in cfg.delivery.nameservers]
    except ValueError:
        raise click.BadParameter("expected IP or IP:PORT", param_hint="--nameserver") from None
    if client_ip is not None:
        try:
            client_ip = str(ipaddress.ip_address(client_ip.strip("[]")))
        except ValueError:
            raise click.BadParameter(f"not an IP address: {client_ip!r}", param_hint="--client-ip") from None
    try:
        if file == "-":
            data = sys.stdin.buffer.read(MAX_FILE + 1)
        else:
            with open(file, "rb") as f:
                data = f.read(MAX_FILE + 1)
    except OSError as e:
        raise Fail(f"cannot read {file}: {e.strerror or e}") from None
    if len(data) > MAX_FILE:
        raise Fail(f"{file}: larger than {MAX_FILE >> 20} MiB")
    if not data.strip():
        raise Fail(f"{file}: empty message")
    if mail_from is not None:
        mail_from = mail_from.strip().strip("<>")
    from courrier.mailauth._dns import Resolver
    from courrier.mailauth.report import Authenticator

    auth = Authenticator(Resolver(servers), cfg.hostname)
    report = auth.check(data, client_ip=client_ip, helo=helo, mail_from=mail_from)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(_render(file, report))
    raise SystemExit(EXIT.get(report.verdict, UNVERIFIABLE_EXIT))
