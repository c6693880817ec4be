"""DANE for SMTP (RFC 7672): does the certificate chain an MX host presented match one of its TLSA records?

Pure functions over DER bytes and TLSA values, so they can be tested without a network; looking the records up (and
deciding whether the AD bit makes them count) is :mod:`courrier.delivery.tlspolicy`'s job.

- **Usable records** (RFC 7672 §3.1.3): only DANE-TA(2) and DANE-EE(3). PKIX-TA(0) and PKIX-EE(1) are unusable for
  SMTP, as are unknown selectors and matching types (RFC 6698 §2.1). A validated TLSA RRset with no usable record
  still makes TLS mandatory, without authentication (RFC 7672 §2.2).
- **DANE-EE(3)** (RFC 7672 §3.1.1): the leaf certificate (selector 0) or its SubjectPublicKeyInfo (selector 1)
  matches; neither the name in the certificate nor its dates are checked — the DNS is the authority.
- **DANE-TA(2)** (RFC 7672 §3.1.2): a certificate the server sent above the leaf matches; every link below it must
  be a valid signature, the certificates below it must be within their dates, and the leaf must carry the MX host
  name (RFC 7672 §3.2.2, wildcard only as the whole leftmost label, RFC 6125 §6.4.3). The server has to send the
  trust anchor's certificate in its chain (RFC 7672 §3.2.1 asks servers to); a key-only anchor absent from the chain
  is not looked for.
- **Matching types** (RFC 6698 §2.1.3): 0 exact, 1 SHA-256, 2 SHA-512.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

DANE_TA, DANE_EE = 2, 3
MAX_CHAIN = 10  # certificates looked at; a longer chain is not a mail server's


@dataclass(frozen=True)
class TLSA:
    usage: int
    selector: int
    mtype: int
    data: bytes

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()[:16]}…"


def usable(records: Iterable[TLSA]) -> list[TLSA]:
    """The records an SMTP client may use (RFC 7672 §3.1.3)."""
    return [r for r in records if r.usage in (DANE_TA, DANE_EE) and r.selector in (0, 1) and r.mtype in (0, 1, 2)]


def selected(cert: x509.Certificate, selector: int) -> bytes:
    """The bytes a TLSA selector names (RFC 6698 §2.1.2): the whole certificate, or its SubjectPublicKeyInfo."""
    if selector == 0:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def association(data: bytes, mtype: int) -> bytes:
    """Certificate association data for a matching type (RFC 6698 §2.1.3)."""
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def matches(record: TLSA, cert: x509.Certificate) -> bool:
    return association(selected(cert, record.selector), record.mtype) == record.data


def name_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125 §6.4: a DNS-ID in subjectAltName equal to ``host``, or a ``*.`` wildcard standing for exactly its
    first label; the Common Name only when the certificate has no DNS-ID at all (RFC 6125 §6.4.4)."""
    host = host.rstrip(".").lower()
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    for name in names:
        n = name.rstrip(".").lower()
        if n == host:
            return True
        if n.startswith("*.") and "." in host and host.split(".", 1)[1] == n[2:] and n.count(".") >= 2:
            return True
    return False


def _current(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
        return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):  # not a valid link
        return False


def verify(chain_der: Sequence[bytes], records: Sequence[TLSA], host: str,
           now: datetime.datetime | None = None) -> str | None:
    """None when the chain (leaf first, as the server sent it) is authenticated by ``records``; otherwise why not."""
    if not chain_der:
        return "the server sent no certificate"
    try:
        chain = [x509.load_der_x509_certificate(c) for c in chain_der[:MAX_CHAIN]]
    except ValueError as e:
        return f"unreadable certificate: {e}"
    leaf = chain[0]
    for r in records:
        if r.usage == DANE_EE and matches(r, leaf):
            return None  # RFC 7672 §3.1.1: no name, no date checks
    now = now or datetime.datetime.now(datetime.UTC)
    tried_ta = False
    for r in records:
        if r.usage != DANE_TA:
            continue
        tried_ta = True
        for depth in range(1, len(chain)):
            if not matches(r, chain[depth]):
                continue
            path = chain[:depth + 1]
            if not all(_issued_by(path[i], path[i + 1]) for i in range(depth)):
                return f"the chain below the trust anchor (TLSA {r}) does not verify"
            if not all(_current(c, now) for c in path[:depth]):
                return "a certificate below the trust anchor is expired or not yet valid"
            if not name_matches(leaf, host):
                return f"the certificate does not name {host} (RFC 7672 §3.2.2)"
            return None
    spki = association(selected(leaf, 1), 1).hex()
    what = "no TLSA record matches the certificate chain" if tried_ta else "no TLSA record matches the certificate"
    return f"{what} (leaf SPKI SHA-256 {spki})"


def peer_chain(ssl_object: object) -> list[bytes]:
    """The certificates the server sent (DER, leaf first), whether or not they verify.

    Python 3.13 has ``SSLObject.get_unverified_chain()``; before it the same call exists on the inner ``_sslobj`` —
    DANE-TA needs the chain, not just the leaf. Falls back to the leaf alone."""
    get = getattr(ssl_object, "get_unverified_chain", None) or getattr(
        getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if get is not None:
        out = []
        for c in get() or []:
            out.append(c if isinstance(c, bytes) else c.public_bytes(2))  # 2 = _ssl.ENCODING_DER
        if out:
            return out
    leaf = ssl_object.getpeercert(binary_form=True)  # type: ignore[attr-defined]
    return [leaf] if leaf else []
