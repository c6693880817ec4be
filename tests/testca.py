"""A throwaway certificate authority and a loopback HTTPS server, for the outbound TLS policy tests (MTA-STS, DANE).

``TestCA()`` makes a root (ECDSA P-256, BasicConstraints CA:TRUE); ``ca.issue(["mx.b.test"])`` a leaf for those DNS
names, signed by it (or ``self_signed=True``, or with ``days`` in the past for an expired one). ``ca.write(dir)``
writes ``ca.pem`` — what ``[delivery] tls_ca_file`` takes.

``PolicyServer(ca, ["mta-sts.b.test", …], folder)`` serves HTTPS on 127.0.0.1 with one certificate for those names;
``server.serve(policy, host=…)`` sets what a GET for that Host gets (``server.reply``, (status, headers, body), for
any other), and ``server.requests`` lists them.
"""

from __future__ import annotations

import datetime
import http.server
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Leaf:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]  # what the server sends: leaf first, then the CA

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def chain_der(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.chain]

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        """``name.pem`` (leaf + chain) and ``name.key``: what ``[tls] cert``/``key`` take."""
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        cert.write_bytes(b"".join(_pem(c) for c in self.chain))
        key.write_bytes(_key_pem(self.key))
        key.chmod(0o600)
        return cert, key


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, name: str = "courrier test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / "ca.pem"
        p.write_bytes(self.pem)
        return p

    def issue(self, names: list[str], *, self_signed: bool = False, expired: bool = False) -> Leaf:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        issuer = subject if self_signed else self.cert.subject
        start, end = ((NOW - datetime.timedelta(days=10), NOW - datetime.timedelta(days=1)) if expired
                      else (NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=30)))
        b = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if not self_signed:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                critical=False)
        cert = b.sign(key if self_signed else self.key, hashes.SHA256())
        return Leaf(cert, key, [cert] if self_signed else [cert, self.cert])


class PolicyServer:
    """HTTPS on 127.0.0.1 answering every GET with ``reply``: (status, headers, body)."""

    def __init__(self, ca: TestCA, names: str | list[str], folder: Path, *, leaf: Leaf | None = None) -> None:
        self.reply: tuple[int, dict[str, str], bytes] = (404, {}, b"")
        self.by_host: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []
        owner = self
        names = [names] if isinstance(names, str) else names
        cert, key = (leaf or ca.issue(names)).write(folder, "policy-host")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.requests.append(f"{self.headers.get('Host')} {self.path}")
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
                status, headers, body = owner.by_host.get(host, owner.reply)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Transfer-Encoding" not in headers and "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def serve(self, policy: str, content_type: str = "text/plain", host: str | None = None) -> None:
        reply = (200, {"Content-Type": content_type}, policy.encode())
        if host is None:
            self.reply = reply
        else:
            self.by_host[host] = reply

    def __enter__(self) -> PolicyServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
