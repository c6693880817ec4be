"""``courrier dkim keygen DOMAIN [--selector S]``: a DKIM key for outbound signing, and the TXT record to publish.

The key goes to ``data_dir/dkim/<domain>.<selector>.key`` (PEM, mode 0600, never overwritten); a running server
picks it up at its next start or on SIGHUP. RSA 2048 by default (what every verifier understands); ed25519
(RFC 8463) is smaller but not yet verified everywhere — publish both under two selectors if you want it.
"""

from __future__ import annotations

import click

from courrier.cli import Fail, common_options, main
from courrier.cli.dnsrecords import zone_txt
from courrier.config import Config, parse_domain


@main.group()
def dkim() -> None:
    """DKIM keys for signing outbound mail."""


@dkim.command("keygen")
@click.argument("domain")
@click.option("--selector", default=None, metavar="S", help="Selector (default: [dkim] selector, \"courrier\").")
@click.option("--type", "algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa", show_default=True,
              help="Key type.")
@click.option("--bits", type=click.IntRange(1024, 4096), default=2048, show_default=True, help="RSA key size.")
@common_options
def keygen(cfg: Config, domain: str, selector: str | None, algorithm: str, bits: int) -> None:
    """Create a DKIM key for DOMAIN and print the DNS TXT record to publish."""
    try:
        domain = parse_domain(domain)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="DOMAIN") from None
    from courrier.mailauth import dkim as dkim_keys  # dkimpy and cryptography only when a key is made

    selector = selector or cfg.dkim.selector
    if not selector or not all(c.isalnum() or c in "-_" for c in selector):
        raise click.BadParameter("letters, digits, - and _ only", param_hint="--selector")
    pem = dkim_keys.generate_pem(algorithm, bits)
    try:
        path = dkim_keys.write_key(cfg.data_dir / "dkim", domain, selector, pem)
    except FileExistsError:
        raise Fail(f"{cfg.data_dir / 'dkim' / f'{domain}.{selector}.key'} exists: choose another --selector "
                   "(rotate keys by publishing the new selector first)") from None
    except OSError as e:
        raise Fail(f"cannot write the key under {cfg.data_dir / 'dkim'}: {e.strerror or e}") from None
    key = dkim_keys.signing_key(domain, selector, pem)
    click.echo(f"wrote {path}")
    click.echo("publish this TXT record, then reload the server (SIGHUP) or restart it:")
    click.echo(zone_txt(key.record_name, key.record))
    if not cfg.is_local_domain(domain):
        click.echo(f"note: {domain} is not in `domains` {list(cfg.domains)}: mail from it is not signed", err=True)
