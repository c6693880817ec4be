"""The header checks of the MSA: finding the header section, parsing From/Sender strictly, address ownership."""

import io

import pytest

from courrier.accounts import Account
from courrier.mail.message import ReceivedMessage
from courrier.mail.path import parse_address
from courrier.roles.submission import HeaderProblem, header_section, mailbox_list, owns, parse_headers


def msg(data: bytes) -> ReceivedMessage:
    return ReceivedMessage(io.BytesIO(data), len(data))


def test_header_section_stops_at_the_empty_line():
    assert header_section(msg(b"From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n\r\nmore\r\n")) == \
        b"From: a@b.test\r\nSubject: x\r\n"


def test_header_section_of_a_message_without_body_or_headers():
    assert header_section(msg(b"From: a@b.test\r\n")) == b"From: a@b.test\r\n"
    assert header_section(msg(b"\r\nonly a body\r\n")) == b""


def test_oversized_header_section_is_refused():
    big = b"X-Filler: " + b"a" * 900 + b"\r\n"
    data = big * 400 + b"\r\nbody\r\n"
    with pytest.raises(HeaderProblem) as e:
        header_section(msg(data), limit=64 * 1024)
    assert e.value.reply.code == 550 and e.value.reply.enhanced == "5.6.0"


def addrs(header: str, name: str = "From", required: bool = True) -> list[str]:
    return [str(a) for a in mailbox_list(parse_headers(header.encode()), name, required=required)]


@pytest.mark.parametrize("header,expected", [
    ("From: Bob <bob@example.test>\r\n", ["bob@example.test"]),
    ("From: bob@example.test, Eve <eve@x.test>\r\n", ["bob@example.test", "eve@x.test"]),
    ("From: =?utf-8?q?B=C3=B6b?= <Bob@Example.TEST>\r\n", ["Bob@example.test"]),
    ("From: Bob\r\n <bob@example.test> (folded, with a comment)\r\n", ["bob@example.test"]),
    ("From: b\u00f6b@example.test\r\n", ["b\u00f6b@example.test"]),  # RFC 6532 UTF-8 header
])
def test_valid_from(header, expected):
    assert addrs(header) == expected


@pytest.mark.parametrize("header", [
    "Subject: no from\r\n",
    "From:\r\n",
    "From: not an address\r\n",
    "From: <>\r\n",
    "From: Bob <bob@>\r\n",
    "From: bob\r\n",
    "From: undisclosed-recipients:;\r\n",
    "From: team: a@b.test;\r\n",
    "From: bob@ex ample.test\r\n",
    "From: a@b.test\r\nFrom: c@d.test\r\n",
])
def test_missing_or_broken_from_is_550_5_6_0(header):
    with pytest.raises(HeaderProblem) as e:
        addrs(header)
    assert (e.value.reply.code, e.value.reply.enhanced) == (550, "5.6.0")
    assert "From" in e.value.reply.text


def test_header_section_must_be_utf8():
    with pytest.raises(HeaderProblem):
        parse_headers(b"From: b\xff@example.test\r\n")


def test_sender_is_optional_but_single():
    assert addrs("From: a@b.test\r\n", "Sender", required=False) == []
    with pytest.raises(HeaderProblem):
        addrs("From: a@b.test\r\nSender: a@b.test, c@d.test\r\n", "Sender", required=False)


def test_owns_address_aliases_and_subaddresses():
    acct = Account("bob@example.test", False, False, ("robert@example.test",))
    assert owns(acct, parse_address("bob@example.test"))
    assert owns(acct, parse_address("BOB@EXAMPLE.TEST"))
    assert owns(acct, parse_address("robert@example.test"))
    assert owns(acct, parse_address("bob+lists@example.test"))
    assert owns(acct, parse_address("robert+x@example.test"))
    assert not owns(acct, parse_address("bobby@example.test"))
    assert not owns(acct, parse_address("bob@example.test.evil"))
    assert not owns(acct, parse_address("alice@example.test"))
