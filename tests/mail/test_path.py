"""RFC 5321 §4.1.2 paths, RFC 6531 UTF-8 addresses, RFC 3461 xtext."""

import pytest

from courrier.mail.path import (
    NULL,
    Address,
    AddressError,
    parse_params,
    parse_path,
    split_path_and_params,
    xtext_decode,
    xtext_encode,
)


@pytest.mark.parametrize("path,local,domain", [
    ("<bob@example.test>", "bob", "example.test"),
    ("<Bob.Smith@EXAMPLE.test>", "Bob.Smith", "example.test"),
    ('<"john doe"@example.test>', "john doe", "example.test"),
    ('<"user@other"@example.test>', "user@other", "example.test"),
    ("<user%other@example.test>", "user%other", "example.test"),
    ("<other!user@example.test>", "other!user", "example.test"),
    ("<@relay.test,@b.test:user@other.test>", "user", "other.test"),
    ("<user@[127.0.0.1]>", "user", "[127.0.0.1]"),
    ("<user@[IPv6:::1]>", "user", "[IPv6:::1]"),
    ("<jörg@bücher.test>", "jörg", "bücher.test"),
])
def test_paths(path, local, domain):
    a = parse_path(path, allow_null=False, utf8=True)
    assert (a.local, a.domain) == (local, domain)


def test_null_path():
    assert parse_path("<>", allow_null=True, utf8=False) is NULL
    with pytest.raises(AddressError):
        parse_path("<>", allow_null=False, utf8=False)


@pytest.mark.parametrize("bad", ["bob@example.test", "<bob>", "<@example.test>", "<bob@>", "<bob@exa mple.test>",
                                 '<"unterminated@x.test>', "<a..b@x.test>", "<" + "a" * 65 + "@x.test>"])
def test_bad_paths(bad):
    with pytest.raises(AddressError):
        parse_path(bad, allow_null=False, utf8=True)


def test_utf8_needs_smtputf8():
    with pytest.raises(AddressError):
        parse_path("<jörg@x.test>", allow_null=False, utf8=False)


def test_split_and_params():
    assert split_path_and_params("FROM:<a@b.test> SIZE=100 BODY=8BITMIME", "FROM") == (
        "<a@b.test>", ["SIZE=100", "BODY=8BITMIME"])
    assert split_path_and_params("FROM: <a@b.test>", "FROM")[0] == "<a@b.test>"
    assert split_path_and_params('TO:<"a>b"@c.test> NOTIFY=NEVER', "TO") == ('<"a>b"@c.test>', ["NOTIFY=NEVER"])
    assert parse_params(["size=100", "SMTPUTF8"]) == {"SIZE": "100", "SMTPUTF8": None}
    with pytest.raises(AddressError):
        parse_params(["SIZE=1", "SIZE=2"])


def test_subaddress_and_str():
    a = Address("bob+news", "example.test")
    assert a.base() == Address("bob", "example.test") and a.tag == "news"
    assert str(Address("john doe", "x.test")) == '"john doe"@x.test'


def test_xtext():
    assert xtext_decode("rfc822;a+2Bb@x.test") == "rfc822;a+b@x.test"
    assert xtext_encode("a+b=c") == "a+2Bb+3Dc"
    with pytest.raises(AddressError):
        xtext_decode("a+zz")
