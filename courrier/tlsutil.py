"""TLS for every listener: the configured certificate, or a self-signed pair made once under ``data_dir/tls/``.

Server contexts allow TLS 1.2 and 1.3 only (RFC 8996 retired the older versions; RFC 8314 §4.1).

The self-signed certificate is a *leaf* (RFC 5280 §4.2.1.9: BasicConstraints CA:FALSE, critical), so a client that
is told to trust it (``SSL_CERT_FILE``, mbsync ``CertificateFile``, msmtp ``tls_trust_file``) trusts this one server
and cannot be made to accept certificates it would sign: KeyUsage digitalSignature (§4.2.1.3; an ECDSA key needs no
keyEncipherment), ExtendedKeyUsage serverAuth (§4.2.1.12), subject and authority key identifiers (§4.2.1.1-2, which
``openssl verify -x509_strict`` asks for), and the names clients check (RFC 6125 §6.4): ``hostname``, ``localhost``,
127.0.0.1 and ::1 in subjectAltName. A certificate we made earlier that lacks any of this (older versions made a CA,
or ``hostname`` changed since) is made again at start; certificates configured under ``[tls]`` are never touched.

Per-domain certificates (``[tls.domains."example.org"]``) are chosen by the name the client sends in SNI (RFC 6066
§3): an exact name first, then a wildcard ``*.example.org`` for one more label (RFC 6125 §6.4.3), else the default
pair. Every listener is handed one *front* context for good (asyncio keeps it for the listening socket and for each
STARTTLS); its ``sni_callback`` moves each handshake onto a context of the current ``CertSet``, so SIGHUP installs a
new set without rebinding anything and without touching connections already established.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ISSUER_ORG = "courrier self-signed"  # marks a certificate as ours to replace
VALIDITY = datetime.timedelta(days=3650)


def _names(hostname: str) -> list[x509.GeneralName]:
    """subjectAltName entries: ``hostname`` (a DNS name, or an IP address when it is one), localhost, 127.0.0.1, ::1."""
    out: list[x509.GeneralName] = []
    for name in (hostname, "localhost"):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
        except ValueError:
            out.append(x509.DNSName(name.encode("idna").decode("ascii") if not name.isascii() else name))
    out += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    return list(dict.fromkeys(out))  # hostname = "localhost" is listed once


def build_self_signed(hostname: str) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM): an ECDSA P-256 leaf for ``hostname``, valid 10 years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64]),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ISSUER_ORG)])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_names(hostname)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def is_current_leaf(cert_pem: bytes, hostname: str) -> bool:
    """Whether a certificate we made is still what ``build_self_signed`` would make for ``hostname``: a leaf for
    server authentication naming every name of ``_names``, not about to expire. Someone else's: always True."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return False
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not orgs or orgs[0].value != ISSUER_ORG:
        return True  # put there by the administrator: theirs to manage
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    return (not ca and ExtendedKeyUsageOID.SERVER_AUTH in eku and set(_names(hostname)) <= set(sans)
            and cert.not_valid_after_utc > soon)


def _write_private(path: Path, data: bytes) -> None:
    """Writes ``path`` atomically with mode 0600 (tmp + fsync + rename), whatever the umask."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_self_signed(tls_dir: Path, hostname: str) -> tuple[Path, Path]:
    """Returns (cert, key) paths under ``tls_dir``, (re)making the pair when missing or not a current leaf."""
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_path.exists() and key_path.exists():
        try:
            if is_current_leaf(cert_path.read_bytes(), hostname):
                return cert_path, key_path
        except OSError:
            return cert_path, key_path  # unreadable: loading it will say so in one line
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_pem, key_pem = build_self_signed(hostname)
    _write_private(key_path, key_pem)  # the key first: a cert without its key would never load
    _write_private(cert_path, cert_pem)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def select(names: Mapping[str, object], server_name: str | None) -> str | None:
    """The key of ``names`` serving ``server_name``: the exact name, else its ``*.parent`` wildcard (one label
    only, RFC 6125 §6.4.3), else None (the default pair). Case-insensitive; a trailing dot is ignored."""
    if not server_name:
        return None
    name = server_name.lower().rstrip(".")
    if name in names:
        return name
    _, dot, parent = name.partition(".")
    if dot and parent and f"*.{parent}" in names:
        return f"*.{parent}"
    return None


class CertError(Exception):
    """One line: which pair could not be loaded and why."""


def _load(cert: Path, key: Path, what: str) -> ssl.SSLContext:
    try:
        return server_context(cert, key)
    except (ssl.SSLError, OSError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise CertError(f"cannot load TLS certificate{what} {cert} / key {key}: {reason}") from None


class CertSet:
    """The default context and one per configured server name, all loaded up front: a set that loads is whole,
    one that does not raises CertError and leaves whatever is running untouched."""

    def __init__(self, default: tuple[Path, Path], domains: Mapping[str, tuple[Path, Path]]) -> None:
        self.default = _load(*default, "")
        self.by_name = {name: _load(cert, key, f" of tls.domains.{name}") for name, (cert, key) in domains.items()}

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        chosen = select(self.by_name, server_name)
        return self.default if chosen is None else self.by_name[chosen]


class SNIServer:
    """The front context every TLS listener keeps; ``install`` swaps the certificates it hands out."""

    def __init__(self, certs: CertSet) -> None:
        self.certs = certs
        self.context = server_context_without_cert()
        self.context.sni_callback = self._pick

    def install(self, certs: CertSet) -> None:
        """New handshakes use ``certs`` from now on (one attribute store: atomic for the event loop)."""
        self.certs = certs

    def _pick(self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        # Called for every ClientHello, with None when the client sent no SNI (e.g. `openssl s_client -noservername`).
        conn.context = self.certs.context_for(server_name)


def server_context_without_cert() -> ssl.SSLContext:
    """The settings of `server_context` without a certificate: a front context's certificate is never shown, since
    its ``sni_callback`` always moves the handshake to another context."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx
