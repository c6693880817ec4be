"""Whether two addresses belong to one organisation: the inspector's forged-From marker.

The header From and the envelope sender (MAIL FROM) often differ in honest mail — a newsletter bounces to
``bounce@news.example.com`` while its From says ``news@example.com``. What forgery looks like is a From of *another
organisation*, which is the question DMARC's relaxed alignment asks (RFC 7489 §3.1.1): are the organisational
domains (§3.2, the public suffix plus one label, from the Public Suffix List) equal? ``example.co.uk`` and
``shop.example.co.uk`` are one organisation; ``a.co.uk`` and ``b.co.uk`` are two, and so are ``alice.github.io`` and
``bob.github.io`` (a private suffix of the list).

A null envelope sender (``<>``, bounces and DSNs) has no domain: as SPF does (RFC 7208 §2.4), the HELO name stands
in for it.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList

from courrier.mailauth.dmarc import org_domain


@functools.cache
def _psl() -> PublicSuffixList:
    """The bundled list, parsed once per process (tens of milliseconds)."""
    return PublicSuffixList()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def organisation(domain: str) -> str:
    return org_domain(_psl(), domain) if domain else ""


def same_organisation(header_from: str, mail_from: str, helo: str = "") -> bool:
    """True when the header From's organisational domain is the envelope sender's (or, for ``<>``, HELO's)."""
    envelope = domain_of(mail_from) if mail_from else helo.strip().lower().rstrip(".")
    header = domain_of(header_from)
    return bool(header) and organisation(header) == organisation(envelope)
