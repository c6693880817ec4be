"""``courrier dns DOMAIN``: the DNS records to publish so that mail from and to DOMAIN works and authenticates.

MX (RFC 5321 §5.1) pointing at this host, the A/AAAA of the hostname, SPF (RFC 7208: the MX hosts may send), one
DKIM key record per key in ``data_dir/dkim`` (RFC 6376 §3.6), DMARC (RFC 7489 §6.3), the client SRV records
(RFC 6186, RFC 8314 §5.1), the ``_mta-sts`` TXT record and the names the web listener answers for client set-up and
the MTA-STS policy (RFC 8461 §3) — as a table, then as zone-file lines ready to paste. ``--check`` compares them with
what DNS publishes (courrier/cli/dnscheck.py). (Named ``dnsrecords`` so it never shadows dnspython's ``dns``.)
"""

from __future__ import annotations

import ipaddress
from typing import Any

import click

from courrier.cli import common_options, main
from courrier.config import Config, parse_domain


def _quoted(parts: list[str]) -> str:
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def zone_txt(name: str, text: str) -> str:
    """A zone-file TXT line; text longer than 255 octets is split into several strings (RFC 7208 §3.3)."""
    parts = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    rdata = _quoted(parts) if len(parts) == 1 else "( " + _quoted(parts) + " )"
    return f"{name}.\t3600\tIN\tTXT\t{rdata}"


def _addresses(cfg: Config, given: tuple[str, ...]) -> list[str]:
    if given:
        return [str(ipaddress.ip_address(a)) for a in given]
    out = []
    for hp in cfg.listen.smtp:
        try:
            ip = ipaddress.ip_address(hp.host)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_unspecified) and str(ip) not in out:
            out.append(str(ip))
    return out


def expected(cfg: Config, domain: str, addresses: list[str], dmarc_policy: str,
             keys: list[Any]) -> list[tuple[str, str, str, str]]:
    """(owner, type, value, why) of every record to publish for ``domain``."""
    from courrier import clientconfig

    host = cfg.hostname
    records: list[tuple[str, str, str, str]] = [(domain, "MX", f"10 {host}.", "mail for the domain goes to this host")]
    for a in addresses:
        kind = "AAAA" if ":" in a else "A"
        records.append((host, kind, a, "the address of the MX host"))
    records.append((domain, "TXT", "v=spf1 mx -all", "SPF: only the MX hosts send for the domain"))
    for key in keys:
        records.append((key.record_name, "TXT", key.record, f"DKIM public key ({key.algorithm})"))
    records.append((f"_dmarc.{domain}", "TXT", f"v=DMARC1; p={dmarc_policy}; rua=mailto:postmaster@{domain}",
                    "DMARC: what receivers do with mail that fails"))
    records.append((f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={clientconfig.mta_sts_id(cfg)}",
                    f"MTA-STS: a policy ({clientconfig.mta_sts_mode(cfg)}) at https://mta-sts.{domain}/"))
    if host != f"mta-sts.{domain}":
        records.append((f"mta-sts.{domain}", "CNAME", f"{host}.", "serves the MTA-STS policy (needs HTTPS)"))
    for owner, target in clientconfig.srv_records(cfg, domain):
        records.append((owner, "SRV", target, "RFC 6186: where mail clients connect" if target != "0 0 0 ." else
                        "RFC 6186: this service is not offered"))
    if host != f"autoconfig.{domain}":
        records.append((f"autoconfig.{domain}", "CNAME", f"{host}.", "Thunderbird autoconfig"))
    records.append((f"_autodiscover._tcp.{domain}", "SRV", f"0 0 443 {host}.", "Outlook autodiscover (HTTPS)"))
    return records


@main.command("dns")
@click.argument("domain")
@click.option("--ip", "ips", multiple=True, metavar="IP",
              help="Public address of this host (repeatable; default: the public [listen] smtp addresses).")
@click.option("--dmarc-policy", type=click.Choice(["none", "quarantine", "reject"]), default="quarantine",
              show_default=True, help="What receivers should do with mail failing DMARC.")
@click.option("--zone", "zone_only", is_flag=True, help="Print only the zone-file lines.")
@click.option("--check", is_flag=True,
              help="Compare with what DNS publishes ([delivery] nameservers): one line per record, ok/missing/"
                   "differs; exit 3 when any record is missing or differs.")
@common_options
def dns_records(cfg: Config, domain: str, ips: tuple[str, ...], dmarc_policy: str, zone_only: bool,
                check: bool) -> None:
    """Print the DNS records to publish for DOMAIN (MX, A/AAAA, SPF, DKIM, DMARC, SRV, MTA-STS)."""
    try:
        domain = parse_domain(domain)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="DOMAIN") from None
    try:
        addresses = _addresses(cfg, ips)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--ip") from None
    if check:
        from courrier.cli.dnscheck import check_published

        raise SystemExit(check_published(cfg, domain, addresses, dmarc_policy))
    from courrier.mailauth import dkim as dkim_keys  # dkimpy and cryptography only for this command

    host = cfg.hostname
    keys, problems = dkim_keys.load_keys(cfg.data_dir / "dkim", cfg.dkim.keys, cfg.dkim.selector)
    records = expected(cfg, domain, addresses, dmarc_policy, keys.get(domain, []))
    notes = []
    if not addresses:
        notes.append(f"no public address known for {host}: add its A/AAAA records (or pass --ip)")
    if not keys.get(domain):
        notes.append(f"no DKIM key for {domain}: run `courrier dkim keygen {domain}` and print this again")
    notes += [f"unusable DKIM key {p}" for p in problems]
    if not cfg.is_local_domain(domain):
        notes.append(f"{domain} is not in `domains` {list(cfg.domains)}: this host would refuse its mail")

    if not zone_only:
        click.echo(f"DNS records for {domain} (mail host {host})\n")
        for name, rtype, value, why in records:
            shown = value if len(value) <= 70 else value[:67] + "..."
            click.echo(f"  {name:<32} {rtype:<5} {shown}")
            click.echo(f"  {'':<32} {'':<5} ; {why}")
        for n in notes:
            click.echo(f"note: {n}")
        click.echo("\nZone-file lines:\n")
    for name, rtype, value, _ in records:
        if rtype == "TXT":
            click.echo(zone_txt(name, value))
        else:
            click.echo(f"{name}.\t3600\tIN\t{rtype}\t{value}")
    if zone_only:
        for n in notes:
            click.echo(f"; note: {n}")
