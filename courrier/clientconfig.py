"""What mail clients and other servers are told about this server: Thunderbird autoconfig, Outlook autodiscover,
RFC 6186 SRV records and the inbound MTA-STS policy (RFC 8461).

All of it names ``hostname`` and the ports of the configured listeners, implicit TLS preferred (RFC 8314 §5.1:
"MUAs SHOULD use implicit TLS"; its SRV records get the better priority). Pure functions of the Config: the web layer
serves them (courrier/web/wellknown.py) and ``courrier dns`` prints the records (courrier/cli/dnsrecords.py), so what
is published and what is served cannot drift apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from xml.sax.saxutils import escape

from courrier.config import Config

MTA_STS_MAX_AGE = 604800  # one week (RFC 8461 §3.2 allows up to 31557600; weeks is the usual choice)
AUTODISCOVER_MAX = 64 * 1024  # octets of an autodiscover request body (a real one is ~400)
AUTODISCOVER_RESPONSE_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


@dataclass(frozen=True)
class Endpoint:
    """One way in for clients: protocol, port and "SSL" (implicit TLS) or "STARTTLS"."""

    protocol: str  # imap, pop3, smtp
    port: int
    security: str

    @property
    def implicit(self) -> bool:
        return self.security == "SSL"


def endpoints(cfg: Config) -> list[Endpoint]:
    """Every configured client listener, implicit TLS first within each protocol."""
    out = []
    for proto, implicit_name, starttls_name in (("imap", "imaps", "imap"), ("pop3", "pop3s", "pop3"),
                                                ("smtp", "submissions", "submission")):
        for name, security in ((implicit_name, "SSL"), (starttls_name, "STARTTLS")):
            addrs = getattr(cfg.listen, name)
            if addrs:
                out.append(Endpoint(proto, addrs[0].port, security))
    return out


def email_domain(cfg: Config, address: str | None) -> str:
    """The local domain an e-mail address belongs to (the first local domain when it is none of ours)."""
    if address and "@" in address:
        d = address.rsplit("@", 1)[1].strip().lower().rstrip(".")
        if cfg.is_local_domain(d):
            return d
    return cfg.domains[0]


def thunderbird(cfg: Config, address: str | None) -> str:
    """Thunderbird's autoconfig document (config-v1.1.xml, https://wiki.mozilla.org/Thunderbird:Autoconfiguration)."""
    domain = email_domain(cfg, address)
    host = escape(cfg.hostname)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<clientConfig version="1.1">',
             f'  <emailProvider id="{escape(domain)}">']
    lines += [f"    <domain>{escape(d)}</domain>" for d in cfg.domains]
    lines += [f"    <displayName>{escape(domain)} mail</displayName>",
              f"    <displayShortName>{escape(domain)}</displayShortName>"]
    for e in endpoints(cfg):
        tag = "outgoingServer" if e.protocol == "smtp" else "incomingServer"
        lines += [f'    <{tag} type="{e.protocol}">', f"      <hostname>{host}</hostname>",
                  f"      <port>{e.port}</port>", f"      <socketType>{e.security}</socketType>",
                  "      <authentication>password-cleartext</authentication>",
                  "      <username>%EMAILADDRESS%</username>", f"    </{tag}>"]
    lines += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(lines)


class AutodiscoverError(ValueError):
    """A request that is not an Outlook autodiscover request (or is hostile XML)."""


def autodiscover_request(body: bytes) -> str:
    """The e-mail address asked about in an Outlook autodiscover request.

    The body comes from anyone on the Internet, unauthenticated: it is bounded in size and parsed with defusedxml,
    which refuses entity declarations (billion laughs), external entities and DTD retrieval."""
    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    if len(body) > AUTODISCOVER_MAX:
        raise AutodiscoverError(f"request larger than {AUTODISCOVER_MAX} octets")
    try:
        root = DET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError) as e:
        raise AutodiscoverError(f"not an autodiscover request: {type(e).__name__}") from None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "EMailAddress" and el.text and "@" in el.text:
            address = el.text.strip()
            if len(address) <= 320 and address.isprintable() and " " not in address:
                return address
    raise AutodiscoverError("no EMailAddress in the request")


def autodiscover_response(cfg: Config, address: str) -> str:
    """The POX autodiscover answer (Outlook 2007+ "outlook" schema): IMAP, POP3 and SMTP settings."""
    a = escape(address)
    protos = []
    seen = set()
    for e in endpoints(cfg):
        if e.protocol in seen:  # one entry per protocol: the preferred (implicit TLS) one
            continue
        seen.add(e.protocol)
        kind = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}[e.protocol]
        protos += ["      <Protocol>", f"        <Type>{kind}</Type>", f"        <Server>{escape(cfg.hostname)}</Server>",
                   f"        <Port>{e.port}</Port>", "        <DomainRequired>off</DomainRequired>",
                   f"        <LoginName>{a}</LoginName>", "        <SPA>off</SPA>",
                   "        <SSL>on</SSL>", f"        <Encryption>{'SSL' if e.implicit else 'TLS'}</Encryption>",
                   "        <AuthRequired>on</AuthRequired>", "      </Protocol>"]
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">',
        f'  <Response xmlns="{AUTODISCOVER_RESPONSE_SCHEMA}">',
        "    <Account>", "      <AccountType>email</AccountType>", "      <Action>settings</Action>",
        *protos, "    </Account>", "  </Response>", "</Autodiscover>", ""])


def mta_sts_mode(cfg: Config) -> str:
    """``enforce`` with a configured certificate; ``testing`` with the self-signed one, which senders enforcing
    MTA-STS would refuse (RFC 8461 §4.2: the MX certificate must be valid for the MX host name)."""
    return "enforce" if cfg.tls.cert is not None else "testing"


def mta_sts_policy(cfg: Config) -> str:
    """The policy file served at ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (RFC 8461 §3.2: CRLF lines)."""
    return "\r\n".join(["version: STSv1", f"mode: {mta_sts_mode(cfg)}", f"mx: {cfg.hostname}",
                        f"max_age: {MTA_STS_MAX_AGE}", ""])


def mta_sts_id(cfg: Config) -> str:
    """The ``id`` of the ``_mta-sts`` TXT record: derived from the policy, so it changes whenever the policy does
    (RFC 8461 §3.1: senders fetch the policy again only when the id changes). 1-32 alphanumerics."""
    return hashlib.sha256(mta_sts_policy(cfg).encode()).hexdigest()[:20]


def srv_records(cfg: Config, domain: str) -> list[tuple[str, str]]:
    """RFC 6186 §3 (and RFC 8314 §5.1 for ``_submissions``): (owner, "priority weight port target") per service;
    a service not offered is published with target "." (RFC 6186 §4)."""
    out = []
    for service, listener, priority in (("_submissions._tcp", "submissions", 0), ("_submission._tcp", "submission", 10),
                                        ("_imaps._tcp", "imaps", 0), ("_imap._tcp", "imap", 10),
                                        ("_pop3s._tcp", "pop3s", 0), ("_pop3._tcp", "pop3", 10)):
        addrs = getattr(cfg.listen, listener)
        target = f"{priority} 1 {addrs[0].port} {cfg.hostname}." if addrs else "0 0 0 ."
        out.append((f"{service}.{domain}", target))
    return out
