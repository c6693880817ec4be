"""Scenario 36: ``[tls] cert``/``key`` are what both submission listeners present (STARTTLS and implicit TLS), and a
client that verifies the certificate against it succeeds; no self-signed pair is generated then."""

import datetime
import smtplib
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.msa_support import PASSWORDS, msa

NAME = "submit.example.test"


def make_cert(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Test Org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store):
    tmp = tmp_path_factory.mktemp("msa36")
    cert, key = make_cert(tmp)
    s = msa(tmp, sections={"tls": {"cert": str(cert), "key": str(key)}})
    s.cert = cert
    yield s
    s.stop()


def verifying_context(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert))  # verifies the chain and the host name


def test_starttls_presents_the_configured_certificate(server):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c._host = NAME  # the name to verify the certificate against (we connect to the loopback address)
        c.starttls(context=verifying_context(server))
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.login("bob@example.test", PASSWORDS["bob@example.test"])
    assert not (server.data / "tls" / "cert.pem").exists()


def test_implicit_tls_presents_the_configured_certificate(server):
    ctx = verifying_context(server)
    with socket.create_connection(("127.0.0.1", server.ports["submissions"]), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=NAME) as tls:
            assert tls.recv(100).startswith(b"220 ")


def test_openssl_shows_subject_and_issuer(server):
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                        f"127.0.0.1:{server.ports['submission']}", "-CAfile", str(server.cert),
                        "-verify_hostname", NAME, "-crlf"], input="QUIT\n", capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"subject=CN = {NAME}, O = Example Test Org" in p.stdout
    assert "Verify return code: 0 (ok)" in p.stdout
