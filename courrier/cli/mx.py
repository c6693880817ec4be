"""``courrier mx DOMAIN``: the ``dig -t MX`` of the story — exactly the plan the outbound MTA would follow.

MX hosts by preference (equal preferences in the random order the MTA would draw this time) with their A/AAAA
addresses, and the fallbacks spelled out: implicit MX (RFC 5321 §5.1), null MX (RFC 7505), NXDOMAIN, DNS failures.
Exit status: 0 a delivery plan exists, 3 null MX, 1 NXDOMAIN or lookup failure.
"""

from __future__ import annotations

import asyncio

import click

from courrier.cli import Fail, common_options, main
from courrier.config import Config
from courrier.dns import Resolver, parse_nameserver


@main.command()
@click.argument("domain")
@click.option("--nameserver", "nameservers", multiple=True, metavar="IP[:PORT]",
              help="Ask this nameserver (repeatable; default: [delivery] nameservers, else the system's).")
@common_options
def mx(cfg: Config, domain: str, nameservers: tuple[str, ...]) -> None:
    """Show how mail to DOMAIN would be delivered: MX hosts, addresses, fallbacks."""
    try:
        servers = [parse_nameserver(n) for n in nameservers] or \
                  [(ns.host, ns.port) for ns in cfg.delivery.nameservers]
    except ValueError:
        raise click.BadParameter("expected IP or IP:PORT", param_hint="--nameserver") from None
    domain = domain.strip().rstrip(".").lower()
    if not domain or " " in domain:
        raise click.BadParameter("expected a domain name", param_hint="DOMAIN")
    resolver = Resolver(servers, timeout=3.0, lifetime=6.0)
    plan = asyncio.run(resolver.mx_plan(domain))
    port = cfg.delivery.mx_port
    via = ", ".join(f"{h}:{p}" for h, p in servers) if servers else "system resolver"
    click.echo(f";; {domain}: MX lookup via {via}")
    if plan.kind in ("mx", "none", "tempfail") and plan.hosts:
        click.echo(f"{domain}: {len(plan.hosts)} MX record{'s' if len(plan.hosts) != 1 else ''}")
    for h in plan.hosts:
        addrs = " ".join(h.addresses) if h.addresses else f"({h.error})"
        click.echo(f"  {h.preference:>5}  {h.host:<30} {addrs}")
    for note in plan.notes:
        click.echo(f"note: {note}")
    if cfg.delivery.smarthost:
        click.echo(f"note: [delivery] smarthost = {cfg.delivery.smarthost}: the MTA sends everything there instead")
    if plan.deliverable:
        steps = [f"{h.host} [{a}]:{port}" for h in plan.hosts for a in h.addresses]
        click.echo("delivery plan: try " + ", then ".join(steps))
        return
    if plan.kind == "null":
        click.echo("delivery plan: none — messages to this domain bounce at once (5.1.10)")
        raise SystemExit(3)
    if plan.kind == "tempfail":
        raise Fail(f"{domain}: lookup failed temporarily ({'; '.join(plan.notes)})")
    raise Fail(f"{domain}: no delivery plan ({'; '.join(plan.notes) or plan.kind})")
