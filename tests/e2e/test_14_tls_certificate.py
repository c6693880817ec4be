"""Scenario 14 (TLS): the self-signed certificate made at first start is a leaf a client can trust for this server
only — CA:FALSE (critical), digitalSignature, serverAuth, SAN hostname/localhost/127.0.0.1/::1 — checked with the
``cryptography`` library, ``openssl verify -x509_strict``, ``openssl s_client`` and Python's ssl with
``SSL_CERT_FILE`` as the README tells users (issue 11 item 21)."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from courrier import tlsutil
from tests.support import ENV, Server

HOST = "mx.example.test"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("tls14"), listeners=("submissions", "imap"), hostname=HOST)
    with s:
        yield s


def cert_of(srv) -> x509.Certificate:
    return x509.load_pem_x509_certificate((srv.data / "tls" / "cert.pem").read_bytes())


def test_certificate_is_a_server_leaf(srv):
    cert = cert_of(srv)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign and not ku.crl_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST, "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                       ipaddress.ip_address("::1")]


def test_openssl_verify_x509_strict(srv):
    cert = str(srv.data / "tls" / "cert.pem")
    for check in (["-verify_hostname", HOST], ["-verify_hostname", "localhost"], ["-verify_ip", "127.0.0.1"],
                  ["-verify_ip", "::1"]):
        p = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", cert, *check,
                            cert], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout.strip().endswith("OK"), (check, p.stdout, p.stderr)
    p = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", cert, "-verify_hostname", "evil.test", cert],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "hostname mismatch" in p.stdout + p.stderr


def test_openssl_s_client_verifies_the_hostname(srv):
    cert = str(srv.data / "tls" / "cert.pem")
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.ports['submissions']}",
                        "-servername", HOST, "-CAfile", cert, "-verify_hostname", HOST, "-verify_return_error",
                        "-x509_strict"], input="QUIT\r\n", capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in p.stdout, p.stdout[-2000:] + p.stderr
    p = subprocess.run(["openssl", "s_client", "-starttls", "imap", "-connect", f"127.0.0.1:{srv.ports['imap']}",
                        "-CAfile", cert, "-verify_hostname", "localhost", "-verify_return_error"],
                       input="a LOGOUT\r\n", capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in p.stdout, p.stdout[-2000:] + p.stderr


def test_python_client_trusting_it_through_ssl_cert_file(srv):
    """What the README says: SSL_CERT_FILE makes Python (and curl) trust it; the hostname is checked."""
    code = ("import socket, ssl, sys\n"
            "ctx = ssl.create_default_context()\n"  # the default trust store, which SSL_CERT_FILE replaces
            "raw = socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=20)\n"
            "with ctx.wrap_socket(raw, server_hostname=sys.argv[1]) as s:\n"
            "    print(s.recv(100).decode().split()[0])\n")
    env = {**ENV, "SSL_CERT_FILE": str(srv.data / "tls" / "cert.pem")}
    port = str(srv.ports["submissions"])
    for name in (HOST, "localhost", "127.0.0.1"):
        ok = subprocess.run([sys.executable, "-c", code, name, port], env=env, capture_output=True, text=True)
        assert ok.returncode == 0 and ok.stdout.strip() == "220", (name, ok.stderr)
    bad = subprocess.run([sys.executable, "-c", code, "evil.test", port], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in bad.stderr  # evil.test is not in the SAN


def test_an_old_ca_certificate_of_ours_is_replaced(tmp_path):
    """Older versions made a CA:TRUE certificate; ours (O=courrier self-signed) is made again at start, a
    certificate the administrator put there is left alone."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, tlsutil.ISSUER_ORG)])
    now = datetime.datetime.now(datetime.UTC)
    old = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .sign(key, hashes.SHA256()))
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "cert.pem").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    (tls / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    cert_path, _ = tlsutil.ensure_self_signed(tls, HOST)
    new = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert new.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert tlsutil.is_current_leaf(cert_path.read_bytes(), HOST)
    assert not tlsutil.is_current_leaf(cert_path.read_bytes(), "other.example.test")  # hostname changed: remade
