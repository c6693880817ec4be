"""htpasswd parsing and hashes made by real tools (openssl passwd), basic-auth parsing, failure throttling."""

from __future__ import annotations

import base64
import hashlib
import subprocess

import argon2
import pytest

from courrier.auth import Limited
from courrier.web import auth


@pytest.mark.parametrize("flag", ["-apr1", "-1"])
def test_md5_crypt_matches_openssl(flag):
    for pw in ("s3cret", "pässwörd", "a" * 40, ""):
        h = subprocess.run(["openssl", "passwd", flag, pw], capture_output=True, text=True, check=True).stdout.strip()
        assert auth.verify_hash(h, pw), h
        assert not auth.verify_hash(h, pw + "x")


def test_sha_and_argon2_hashes():
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()).decode()
    assert auth.verify_hash(sha, "pw") and not auth.verify_hash(sha, "nope")
    a2 = argon2.PasswordHasher().hash("pw")
    assert auth.verify_hash(a2, "pw") and not auth.verify_hash(a2, "nope")
    assert not auth.verify_hash("plaintext", "plaintext")  # plain-text passwords never grant access


def test_load_htpasswd(tmp_path):
    f = tmp_path / "h"
    f.write_text("# comment\n\nops:{SHA}abc=\n")
    assert auth.load_htpasswd(f) == {"ops": "{SHA}abc="}
    f.write_text("ops:plaintext\n")
    with pytest.raises(auth.AuthFileError, match=r":1: unsupported hash"):
        auth.load_htpasswd(f)
    f.write_text("no-colon-here\n")
    with pytest.raises(auth.AuthFileError, match=r":1: expected user:hash"):
        auth.load_htpasswd(f)
    with pytest.raises(auth.AuthFileError):
        auth.load_htpasswd(tmp_path / "missing")


def test_parse_basic():
    tok = base64.b64encode("ops:pa:ss wörd".encode()).decode()
    assert auth.parse_basic(f"Basic {tok}") == ("ops", "pa:ss wörd")
    assert auth.parse_basic(f"basic {tok}") == ("ops", "pa:ss wörd")
    assert auth.parse_basic("Bearer xyz") is None
    assert auth.parse_basic("Basic !!!") is None
    assert auth.parse_basic(None) is None


async def test_throttle_after_repeated_failures():
    """The shared login limiter (courrier/auth): after the budget, Limited (429) even with the right password."""
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"pw").digest()).decode()
    a = auth.HTTPAuth({"ops": sha}, None)
    budget = a.gate.limiter.budget
    good = "Basic " + base64.b64encode(b"ops:pw").decode()
    bad = "Basic " + base64.b64encode(b"ops:no").decode()
    assert await a.authenticate(good, "10.0.0.1") == auth.Principal("ops", "file")
    for _ in range(budget):
        assert await a.authenticate(bad, "10.0.0.2") is None
    with pytest.raises(Limited):
        await a.authenticate(good, "10.0.0.2")  # limited even with the right password
    assert await a.authenticate(good, "10.0.0.1") == auth.Principal("ops", "file")  # other clients are not
    assert auth.HTTPAuth(None, None).required is False
