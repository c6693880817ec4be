"""SASL PLAIN (RFC 4616) and LOGIN decoding: the one decoder SMTP, IMAP and POP3 use."""

from __future__ import annotations

import base64

import pytest

from courrier.auth import sasl
from courrier.auth.sasl import AuthzDenied, Cancelled, Credentials, Malformed


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Client:
    """Plays the client side of an exchange: answers each challenge with the next scripted line."""

    def __init__(self, *lines: str | None) -> None:
        self.lines = list(lines)
        self.challenges: list[str] = []

    async def __call__(self, challenge: str) -> str | None:
        self.challenges.append(challenge)
        return self.lines.pop(0)


def test_plain_valid_with_and_without_authzid():
    assert sasl.decode_plain(b"\0bob@x.test\0s3cret") == Credentials("bob@x.test", "s3cret")
    assert sasl.decode_plain(b"Bob@X.test\0bob@x.test\0pw").authzid == "Bob@X.test"  # own identity, case aside
    assert sasl.decode_plain("\0jörg@x.test\0pässword".encode()).password == "pässword"


@pytest.mark.parametrize("raw", [b"bob\0pw", b"bob", b"", b"\0bob\0pw\0extra", b"\0\0pw"])
def test_plain_missing_or_extra_nuls_and_empty_identity(raw):
    with pytest.raises(Malformed):
        sasl.decode_plain(raw)


def test_plain_authzid_mismatch_is_denied():
    with pytest.raises(AuthzDenied):
        sasl.decode_plain(b"alice@x.test\0bob@x.test\0pw")  # RFC 4616 §2: acting as another identity


def test_plain_not_utf8():
    with pytest.raises(Malformed):
        sasl.decode_plain(b"\0bob\0\xff\xfe")


@pytest.mark.parametrize("line", ["not base64!", "AGJvYgBwdw", "AGJv YgBwdw==", "Zm9v\x00"])
def test_bad_base64(line):
    with pytest.raises(Malformed):
        sasl.decode_response(line)


def test_cancel_and_empty_response():
    with pytest.raises(Cancelled):
        sasl.decode_response("*")
    assert sasl.decode_response("=") == b""
    assert sasl.decode_response(" AGJvYgBwdw==\r\n") == b"\0bob\0pw"


def test_over_long():
    with pytest.raises(Malformed, match="too long"):
        sasl.decode_response("A" * (sasl.MAX_RESPONSE + 4))  # refused before decoding
    with pytest.raises(Malformed, match="password too long"):
        sasl.decode_plain(b"\0bob\0" + b"p" * (sasl.MAX_FIELD + 1))
    # the longest allowed fields still fit in the longest allowed response
    full = b"a" * sasl.MAX_FIELD + b"\0" + b"a" * sasl.MAX_FIELD + b"\0" + b"p" * sasl.MAX_FIELD
    assert sasl.decode_plain(sasl.decode_response(b64(full))).password == "p" * sasl.MAX_FIELD


async def test_exchange_plain_initial_and_challenge():
    assert await sasl.exchange("plain", b64(b"\0bob\0pw"), Client()) == Credentials("bob", "pw")
    client = Client(b64(b"\0bob\0pw"))
    assert await sasl.exchange("PLAIN", None, client) == Credentials("bob", "pw")
    assert client.challenges == [""]  # RFC 4954 §4: an empty challenge


async def test_exchange_login_steps():
    client = Client(b64(b"bob@x.test"), b64(b"pw"))
    assert await sasl.exchange("LOGIN", None, client) == Credentials("bob@x.test", "pw")
    assert [base64.b64decode(c) for c in client.challenges] == [b"Username:", b"Password:"]
    client = Client(b64(b"pw"))  # user name as the initial response
    assert await sasl.exchange("LOGIN", b64(b"bob"), client) == Credentials("bob", "pw")


async def test_exchange_cancel_and_hang_up():
    with pytest.raises(Cancelled):
        await sasl.exchange("PLAIN", None, Client("*"))
    with pytest.raises(Cancelled):
        await sasl.exchange("LOGIN", None, Client(b64(b"bob"), None))  # connection gone before the password
    with pytest.raises(Malformed):
        await sasl.exchange("LOGIN", None, Client("", b64(b"pw")))  # empty user name
    with pytest.raises(ValueError):
        await sasl.exchange("CRAM-MD5", None, Client())


def test_password_never_in_repr():
    assert "s3cret" not in repr(Credentials("bob", "s3cret"))
