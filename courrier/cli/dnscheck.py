"""``courrier dns DOMAIN --check``: what DNS publishes for DOMAIN against what this server needs, one line per record.

    ok       MX      example.org                   10 mail.example.org
    missing  DMARC   _dmarc.example.org            publish: v=DMARC1; p=quarantine; rua=mailto:postmaster@…
    differs  PTR     203.0.113.25                  mail.other.net (expected mail.example.org)

Every lookup goes through ``[delivery] nameservers`` (the system resolver without them), the same resolver delivery
uses. Checked: MX (RFC 5321 §5.1) names ``hostname``; the hostname's A/AAAA (the ``--ip`` or public ``[listen]
smtp`` addresses when known); one SPF record (RFC 7208 §4.5: two are an error) that lets this host send (``mx``,
``a``, or its address); each DKIM key's public key (RFC 6376 §3.6.1 ``p=``); a DMARC record (RFC 7489 §6.1); the PTR of
each address naming ``hostname`` (receivers check forward-confirmed reverse DNS); the ``_mta-sts`` TXT id of the
policy this server serves and a name for ``mta-sts.DOMAIN`` (RFC 8461 §3). Exit 0 all ok, 3 something missing or
different, 1 DNS could not be asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re

import click

from courrier import clientconfig
from courrier.cli import Fail
from courrier.config import Config
from courrier.dns import DNSError, DNSTempError, NXDomain, Resolver


class _Report:
    def __init__(self) -> None:
        self.problems = 0

    def line(self, status: str, kind: str, name: str, detail: str) -> None:
        if status != "ok":
            self.problems += 1
        click.echo(f"{status:<8} {kind:<7} {name:<32} {detail}")


async def _get(coro: object) -> list:
    """A lookup's answer; NXDOMAIN and NODATA alike are "nothing published"."""
    try:
        return await coro  # type: ignore[misc, no-any-return]
    except NXDomain:
        return []


def _dkim_key(record: str) -> str:
    m = re.search(r"(?:^|;)\s*p=([^;]*)", record)
    return re.sub(r"\s+", "", m.group(1)) if m else ""


async def _check(cfg: Config, domain: str, addresses: list[str], dmarc_policy: str, out: _Report) -> None:
    ns = [(n.host, n.port) for n in cfg.delivery.nameservers]
    r = Resolver(ns, timeout=3.0, lifetime=6.0)
    host = cfg.hostname
    try:
        mx = await _get(r.mx(domain))
    except DNSTempError as e:
        raise Fail(f"cannot ask DNS about {domain}: {e}") from None
    shown = ", ".join(f"{p} {h or '.'}" for p, h in mx)
    if not mx:
        out.line("missing", "MX", domain, f"publish: 10 {host}.")
    elif host in [h for _, h in mx]:
        out.line("ok", "MX", domain, shown)
    else:
        out.line("differs", "MX", domain, f"{shown} (expected 10 {host}.)")

    published = [*await _get(r.a(host)), *await _get(r.aaaa(host))]
    if not published:
        out.line("missing", "A/AAAA", host, "publish: " + (", ".join(addresses) or "the host's public addresses"))
    elif addresses and set(addresses) - set(published):
        out.line("differs", "A/AAAA", host, f"{', '.join(published)} (expected {', '.join(addresses)})")
    else:
        out.line("ok", "A/AAAA", host, ", ".join(published))

    txt = await _get(r.txt(domain))
    spf = [t for t in txt if t.lower().startswith("v=spf1")]
    ours = [*addresses, *published]
    if not spf:
        out.line("missing", "SPF", domain, "publish: v=spf1 mx -all")
    elif len(spf) > 1:
        out.line("differs", "SPF", domain, f"{len(spf)} SPF records: receivers treat that as an error (RFC 7208 §4.5)")
    else:
        terms = spf[0].lower().split()
        allowed = {"mx", "+mx", "a", "+a", f"a:{host}", f"+a:{host}"} | {f"{p}{a}" for a in ours
                                                                         for p in ("ip4:", "ip6:", "+ip4:", "+ip6:")}
        if set(terms) & allowed:
            out.line("ok", "SPF", domain, spf[0])
        else:
            out.line("differs", "SPF", domain, f"{spf[0]} (does not name this host: expected v=spf1 mx -all)")

    from courrier.mailauth import dkim as dkim_keys

    keys, _ = dkim_keys.load_keys(cfg.data_dir / "dkim", cfg.dkim.keys, cfg.dkim.selector)
    if not keys.get(domain):
        out.line("missing", "DKIM", f"*._domainkey.{domain}", f"no key here: run `courrier dkim keygen {domain}`")
    for key in keys.get(domain, []):
        recs = [t for t in await _get(r.txt(key.record_name)) if "p=" in t]
        if not recs:
            out.line("missing", "DKIM", key.record_name, f"publish: {key.record[:60]}…")
        elif any(_dkim_key(t) == _dkim_key(key.record) for t in recs):
            out.line("ok", "DKIM", key.record_name, f"{key.algorithm} key matches data_dir/dkim")
        else:
            out.line("differs", "DKIM", key.record_name, "the published key is not this server's key")

    dmarc = [t for t in await _get(r.txt(f"_dmarc.{domain}")) if t.lower().startswith("v=dmarc1")]
    if len(dmarc) == 1:
        out.line("ok", "DMARC", f"_dmarc.{domain}", dmarc[0])
    elif dmarc:
        out.line("differs", "DMARC", f"_dmarc.{domain}", f"{len(dmarc)} DMARC records (RFC 7489 §6.6.3: none applies)")
    else:
        out.line("missing", "DMARC", f"_dmarc.{domain}",
                 f"publish: v=DMARC1; p={dmarc_policy}; rua=mailto:postmaster@{domain}")

    for ip in dict.fromkeys(addresses or published):
        names = [n.lower().rstrip(".") for n in await _get(r.ptr(ip))]
        if not names:
            out.line("missing", "PTR", ip, f"ask the address's owner (your provider) for PTR {host}")
        elif host in names:
            out.line("ok", "PTR", ip, host)
        else:
            out.line("differs", "PTR", ip, f"{', '.join(names)} (expected {host})")

    want = f"v=STSv1; id={clientconfig.mta_sts_id(cfg)}"
    sts = [t for t in await _get(r.txt(f"_mta-sts.{domain}")) if t.lower().startswith("v=stsv1")]
    if not sts:
        out.line("missing", "MTA-STS", f"_mta-sts.{domain}", f"publish: {want}")
    elif re.sub(r"\s+", "", sts[0]).rstrip(";") == re.sub(r"\s+", "", want):
        out.line("ok", "MTA-STS", f"_mta-sts.{domain}", sts[0])
    else:
        out.line("differs", "MTA-STS", f"_mta-sts.{domain}", f"{sts[0]} (expected {want}: the policy changed)")
    policy_host = f"mta-sts.{domain}"
    served = [*await _get(r.a(policy_host)), *await _get(r.aaaa(policy_host))]
    if served:
        out.line("ok", "MTA-STS", policy_host, ", ".join(served))
    else:
        out.line("missing", "MTA-STS", policy_host, f"publish: CNAME {host}. (serves the policy over HTTPS)")


def check_published(cfg: Config, domain: str, addresses: list[str], dmarc_policy: str) -> int:
    addresses = [str(ipaddress.ip_address(a)) for a in addresses]
    out = _Report()
    try:
        asyncio.run(_check(cfg, domain, addresses, dmarc_policy, out))
    except DNSError as e:
        raise Fail(f"DNS lookup failed: {e}") from None
    return 3 if out.problems else 0
