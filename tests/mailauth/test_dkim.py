"""DKIM: courrier's signatures verify with dkimpy's own API and the other way round, the RFC 8463 example verifies,
and any change after signing fails. Keys are published on the fake DNS server (tests/dnsfake.py)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from courrier.mailauth import dkim
from courrier.mailauth._dns import Resolver
from tests.dnsfake import TIMEOUT
from tests.mailauth.dkimpy_dns import dnsfunc_for

DATA = Path(__file__).parent / "data"

MESSAGE = (b"From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: quarterly numbers\r\n"
           b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@a.test>\r\n\r\n"
           b"Hello Bob,\r\n\r\nthe numbers are attached.\r\n")

# RFC 8463 Appendix A.2: the public keys of the example
RFC8463_KEYS = {
    "brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "test._domainkey.football.example.com":
        "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQ"
        "iY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3I"
        "p3G+2kryOTIKT+l/K4w3QIDAQAB",
}
# RFC 8032 §7.1 TEST 1 secret key: the private half of "brisbane" (RFC 8463 Appendix A.1)
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def publish(fake_dns, key: dkim.SigningKey) -> None:
    fake_dns.set(key.record_name, {"TXT": [key.record]})


@pytest.fixture(params=["rsa", "ed25519"])
def key(request, fake_dns) -> dkim.SigningKey:
    k = dkim.signing_key("a.test", "sel1", dkim.generate_pem(request.param))
    publish(fake_dns, k)
    return k


def test_rfc8463_example_verifies(fake_dns, resolver):
    for name, record in RFC8463_KEYS.items():
        fake_dns.set(name, {"TXT": [record]})
    msg = (DATA / "rfc8463-signed.eml").read_bytes()
    results = dkim.verify(msg, resolver)
    assert [(r.result, r.algorithm, r.selector, r.domain) for r in results] == [
        ("pass", "ed25519-sha256", "brisbane", "football.example.com"),
        ("pass", "rsa-sha256", "test", "football.example.com"),
    ]


def test_rfc8463_key_signs_like_the_rfc(fake_dns, resolver):
    """Our ed25519 path with the RFC's key: the RFC's public key is derived, and dkimpy verifies what we sign."""
    pem = ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    k = dkim.signing_key("football.example.com", "brisbane", pem)
    assert k.record == RFC8463_KEYS["brisbane._domainkey.football.example.com"]
    fake_dns.set(k.record_name, {"TXT": [k.record]})
    msg = (DATA / "rfc8463-signed.eml").read_bytes().split(b"From: ", 1)[1]
    msg = b"From: " + msg
    signed = dkim.sign(msg, k) + msg
    assert dkimpy.verify(signed, dnsfunc=dnsfunc_for(fake_dns.port))
    assert dkim.verify(signed, resolver)[0].result == "pass"


def test_courrier_signs_dkimpy_verifies(fake_dns, key):
    signed = dkim.Signer({"a.test": key}).sign(MESSAGE)
    assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(MESSAGE)
    d = dkimpy.DKIM(signed)
    assert d.verify(dnsfunc=dnsfunc_for(fake_dns.port))
    assert d.signature_fields[b"d"] == b"a.test" and d.signature_fields[b"s"] == b"sel1"
    assert d.signature_fields[b"a"] == dkim.ALGORITHMS[key.algorithm]


def test_dkimpy_signs_courrier_verifies(resolver, key):
    sig = dkimpy.sign(MESSAGE, b"sel1", b"a.test", key.private, signature_algorithm=dkim.ALGORITHMS[key.algorithm])
    [r] = dkim.verify(sig + MESSAGE, resolver)
    assert (r.result, r.domain, r.selector) == ("pass", "a.test", "sel1")


def test_body_altered_after_signing_fails(fake_dns, resolver, key):
    signed = dkim.Signer({"a.test": key}).sign(MESSAGE)
    altered = signed.replace(b"the numbers are attached", b"wire the money today")
    [r] = dkim.verify(altered, resolver)
    assert r.result == "fail" and "body hash" in r.reason
    assert not dkimpy.verify(altered, dnsfunc=dnsfunc_for(fake_dns.port))


def test_signed_header_altered_fails(resolver, key):
    signed = dkim.Signer({"a.test": key}).sign(MESSAGE)
    [r] = dkim.verify(signed.replace(b"Subject: quarterly numbers", b"Subject: urgent"), resolver)
    assert r.result == "fail"


def test_lf_message_is_signed_with_lf_and_verifies(resolver, key):
    lf = MESSAGE.replace(b"\r\n", b"\n")
    signed = dkim.Signer({"a.test": key}).sign(lf)
    assert b"\r" not in signed
    assert dkim.verify(signed, resolver)[0].result == "pass"


def test_other_domains_are_not_signed(key):
    other = MESSAGE.replace(b"alice@a.test", b"alice@elsewhere.test")
    assert dkim.Signer({"a.test": key}).sign(other) == other


def test_unsigned_message_has_no_result(resolver):
    assert dkim.verify(MESSAGE, resolver) == []


def test_missing_key_is_permerror(resolver):
    k = dkim.signing_key("a.test", "gone", dkim.generate_pem("ed25519"))
    [r] = dkim.verify(dkim.sign(MESSAGE, k) + MESSAGE, resolver)
    assert r.result == "permerror" and "no key" in r.reason


def test_dns_timeout_is_temperror(fake_dns):
    k = dkim.signing_key("a.test", "slow", dkim.generate_pem("ed25519"))
    fake_dns.set(k.record_name, TIMEOUT)
    [r] = dkim.verify(dkim.sign(MESSAGE, k) + MESSAGE, Resolver([("127.0.0.1", fake_dns.port)], timeout=0.3))
    assert r.result == "temperror"


def test_garbage_signature_is_permerror_not_a_crash(resolver):
    msg = b"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; nonsense\r\n" + MESSAGE
    [r] = dkim.verify(msg, resolver)
    assert r.result == "permerror"


def test_keys_on_disk(tmp_path):
    d = tmp_path / "dkim"
    path = dkim.write_key(d, "a.test", "s2026", dkim.generate_pem("rsa"))
    assert path.name == "a.test.s2026.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        dkim.write_key(d, "a.test", "s2026", dkim.generate_pem("rsa"))
    other = tmp_path / "elsewhere.pem"
    other.write_bytes(dkim.generate_pem("ed25519"))
    (d / "broken.test.x.key").write_text("not a key")
    keys, problems = dkim.load_keys(d, {"c.test": other}, default_selector="conf")
    assert {d: [(k.selector, k.algorithm) for k in v] for d, v in keys.items()} == {
        "a.test": [("s2026", "rsa")], "c.test": [("conf", "ed25519")]}
    assert len(problems) == 1 and "broken.test.x.key" in problems[0]
    pub = base64.b64decode(keys["a.test"][0].public_b64)
    assert serialization.load_der_public_key(pub).key_size == 2048


def test_two_keys_sign_twice(fake_dns, resolver):
    """RFC 8463 §5: sign with rsa and ed25519 side by side; each signature verifies on its own."""
    keys = [dkim.signing_key("a.test", s, dkim.generate_pem(a)) for s, a in (("r1", "rsa"), ("e1", "ed25519"))]
    for k in keys:
        publish(fake_dns, k)
    signed = dkim.Signer({"a.test": keys}).sign(MESSAGE)
    assert [(r.result, r.selector) for r in dkim.verify(signed, resolver)] == [("pass", "r1"), ("pass", "e1")]
