"""RFC rules checked on the pure pieces: modified UTF-7 mailbox names (RFC 3501 §5.1.3), ENVELOPE address groups
(§7.4.2), fetch-att and sequence-set grammar (§9), the tag grammar (§9), and the SEARCH charset order (§6.4.4)."""

from __future__ import annotations

import pytest

from courrier.access.imap import fetch as FE
from courrier.access.imap import search as SE
from courrier.access.imap.parser import Atom, ParseError, sequence_set
from courrier.access.imap.session import _TAG
from courrier.mailbox import folders, mime


@pytest.mark.parametrize("text,wire", [
    ("Entwürfe", "Entw&APw-rfe"), ("日本語", "&ZeVnLIqe-"), ("a&b", "a&-b"), ("😀", "&2D3eAA-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # the example of RFC 3501 §5.1.3
    ("plain", "plain"),
])
def test_modified_utf7_round_trip(text, wire):
    assert folders.encode_mutf7(text) == wire
    assert folders.decode_mutf7(wire) == text


@pytest.mark.parametrize("wire", [
    "AT&T",  # "&" must be written "&-"
    "&AGE-",  # printable ASCII may not be encoded
    "&ZeVnLIqe-&ZeVnLIqe-",  # two encoded runs in a row must be one
    "&ZeVnLIq-",  # bits left over
    "&2D0-",  # a lone surrogate
    "&Jjo!-",  # not modified BASE64
    "Caf\u00e9",  # 8-bit: never sent raw
    "tab\there",
])
def test_invalid_modified_utf7_is_refused(wire, tmp_path):
    with pytest.raises(folders.FolderError):
        folders.decode_mutf7(wire)
    with pytest.raises(folders.FolderError):
        folders.path_for(tmp_path, wire)


def test_create_makes_superior_names(tmp_path):
    folders.create(tmp_path, "a.b.c")
    assert folders.list_names(tmp_path) == ["INBOX", "a", "a.b", "a.b.c"]
    folders.rename(tmp_path, "a.b.c", "x.y")
    assert folders.list_names(tmp_path) == ["INBOX", "a", "a.b", "x", "x.y"]


def env_addresses(header: bytes, field: str) -> bytes:
    p = mime.parse(header.replace(b"\n", b"\r\n") + b"\r\n\r\n")
    return FE._addresses(p.get(field))


def test_envelope_groups_are_framed():
    assert env_addresses(b"To: undisclosed-recipients:;", "to") == (
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))')
    got = env_addresses(b'Cc: a@x.test, "The: Team": "Q; R" <q@x.test>, b@x.test;, c@x.test', "cc")
    assert got == (b'((NIL NIL "a" "x.test")(NIL NIL "The: Team" NIL)("Q; R" NIL "q" "x.test")'
                   b'(NIL NIL "b" "x.test")(NIL NIL NIL NIL)(NIL NIL "c" "x.test"))')
    assert env_addresses(b"To: x@y.test (comment: with; syntax)", "to") == b'(("comment: with; syntax" NIL "x" "y.test"))'
    assert env_addresses(b"To: Unclosed: a@b.test", "to") == (
        b'((NIL NIL "Unclosed" NIL)(NIL NIL "a" "b.test")(NIL NIL NIL NIL))')


@pytest.mark.parametrize("item", ["BODY[1.]", "BODY[.TEXT]", "BODY[]<0.0>", "BODY[1.0]", "BODY[]<99999999999.1>",
                                  "BODY[HEADER.FIELDS.NOT]", "BODY[1.MIME (A)]", "BODY[TEXT.HEADER]"])
def test_fetch_att_grammar(item):
    with pytest.raises(ParseError):
        FE.parse_items(Atom(item))


@pytest.mark.parametrize("text", ["4294967296", "1:4294967296", "٣", "1:٣", "99999999999"])
def test_sequence_numbers_are_32_bit_ascii(text):
    with pytest.raises(ParseError):
        sequence_set(Atom(text))
    assert sequence_set(Atom("4294967295")) == [(4294967295, 4294967295)]


@pytest.mark.parametrize("tag,ok", [(b"a1", True), (b"A.b-c_d/e", True), (b"x]", True), (b"[y", True), (b"}", True),
                                    (b"a+b", False), (b"*", False), (b"(a", False), (b'"a', False), (b"a%", False),
                                    (b"a{", False), (b"a\\b", False)])
def test_tag_grammar(tag, ok):
    assert bool(_TAG.match(tag + b" NOOP")) is ok


def test_search_charset_is_read_before_the_keys():
    charset, rest = SE.split_charset([Atom("CHARSET"), Atom("KOI8-R"), Atom("SUBJECT"), b"\xe9t\xe9"])
    assert charset == "KOI8-R" and rest == [Atom("SUBJECT"), b"\xe9t\xe9"]
    with pytest.raises(ParseError):
        SE.Parser(rest).all()  # what would have been answered BAD had the charset not been checked first
    with pytest.raises(ParseError):
        SE.split_charset([Atom("CHARSET")])


@pytest.mark.parametrize("flag,ok", [("$Label1", True), ("NonJunk", True), ("a[b", True), ("\\seen", True),
                                     ("foo]", False), ("caf\u00e9", False), ("\\Recent", False), ("\\Bogus", False),
                                     ("k" * 101, False)])
def test_flag_grammar(flag, ok):
    """RFC 3501 §9 flag: the system flags (any case) or an atom; "]" would break [PERMANENTFLAGS (...)]."""
    from courrier.access.imap.cmd_mailbox import parse_flags

    if ok:
        assert len(parse_flags(Atom(flag))) == 1
    else:
        with pytest.raises(ParseError):
            parse_flags(Atom(flag))


def test_nul_is_refused_in_literals_too():
    """RFC 3501 §9: a literal is *CHAR8 (%x01-ff); NUL needs the BINARY extension, which we do not offer."""
    from courrier.access.imap.parser import tokenize

    assert tokenize(b"APPEND INBOX \x00", [b"Subject: x\r\n\r\nok\r\n"])[-1] == b"Subject: x\r\n\r\nok\r\n"
    with pytest.raises(ParseError, match="NUL in literal"):
        tokenize(b"APPEND INBOX \x00", [b"Subject: x\r\n\r\nnul \x00 here\r\n"])
