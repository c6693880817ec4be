"""IMAP syntax: the tokenizer, FETCH items, sequence sets, and ENVELOPE/BODYSTRUCTURE against expected values.

The expected BODYSTRUCTURE strings are also what Dovecot answers for the same messages (see e2e test 53).
"""

import pytest

from courrier.access.imap import fetch as FE
from courrier.access.imap import search as SE
from courrier.access.imap.parser import Atom, ParseError, date_time, format_date_time, sequence_set, tokenize
from courrier.mailbox import mime
from courrier.mailbox.index import Msg
from tests.access.messages import ALTERNATIVE, NESTED, NON_ASCII, SIMPLE, crlf


def test_tokens_atoms_strings_literals_lists():
    toks = tokenize(b'FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>) "a \\"q\\"" \x00', [b"lit\r\n"])
    assert toks == ["FETCH", "1:*", ["FLAGS", "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>"], b'a "q"', b"lit\r\n"]
    assert isinstance(toks[0], Atom) and not isinstance(toks[3], Atom)


@pytest.mark.parametrize("text", [
    b"(unclosed", b"closed)", b'"unterminated', b'"bad \\x escape"', b"BODY[HEADER", b"\x00", b"a\x01b",
    b'"cr \r in quoted"',
])
def test_malformed_input_is_a_parse_error(text):
    with pytest.raises(ParseError):
        tokenize(text, [])


@pytest.mark.parametrize("text,expected", [
    ("1", [(1, 1)]), ("1:*", [(1, None)]), ("*:4,7", [(None, 4), (7, 7)]), ("2,4:6", [(2, 2), (4, 6)]),
])
def test_sequence_sets(text, expected):
    assert sequence_set(Atom(text)) == expected


@pytest.mark.parametrize("text", ["0", "1:0", "a", "1,,2", "", "1:2:3"])
def test_bad_sequence_sets(text):
    with pytest.raises(ParseError):
        sequence_set(Atom(text))


@pytest.mark.parametrize("items", ["BODY[1.HEADERX]", "BODY[HEADER.FIELDS]", "BINARY[1.HEADER]", "NOPE", "BODY[0]",
                                   "BODY[TEXT (A)]", "BODY[MIME]"])
def test_bad_fetch_items(items):
    with pytest.raises(ParseError):
        FE.parse_items(Atom(items))


def test_fetch_item_labels():
    items = FE.parse_items([Atom("BODY.PEEK[header.fields (Subject)]<5.10>"), Atom("BODY[2.1.MIME]")])
    assert items[0].label == b"BODY[HEADER.FIELDS (SUBJECT)]<5>" and items[0].peek and items[0].partial == (5, 10)
    assert items[1].part == (2, 1) and items[1].spec == "MIME" and items[1].sets_seen
    assert [i.name for i in FE.parse_items(Atom("FAST"))] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]


def test_date_time_round_trip():
    ts = date_time(b"17-Jul-1996 02:44:25 -0700")
    assert format_date_time(ts) == "17-Jul-1996 09:44:25 +0000"
    with pytest.raises(ParseError):
        date_time(b"31-Foo-1996 02:44:25 -0700")


def msg(data: bytes) -> FE.Message:
    d = crlf(data)
    return FE.Message(Msg(1, "b", "new/b", frozenset(), len(d), 0.0, 1), lambda: d)


def section(data: bytes, spec: str) -> bytes | None:
    return FE.section_bytes(msg(data), FE.parse_items(Atom(f"BODY[{spec}]"))[0])


def test_sections_of_a_nested_message():
    assert section(NESTED, "1.2") == b"<b>inner html</b>"
    assert section(NESTED, "2.HEADER").startswith(b"From: gina@else.test\r\n") and section(NESTED, "2.HEADER").endswith(b"\r\n\r\n")
    assert section(NESTED, "2.TEXT") == b"forwarded body\r\nline two"
    assert section(NESTED, "2.1") == b"forwarded body\r\nline two"
    assert section(NESTED, "3.MIME").startswith(b"Content-Type: application/pdf")
    assert section(NESTED, "3") == b"JVBERi0xLjQK"
    assert section(NESTED, "4") == b"" and section(SIMPLE, "1.HEADER") == b""
    assert section(SIMPLE, "1") == crlf(SIMPLE).split(b"\r\n\r\n", 1)[1]
    assert section(SIMPLE, "HEADER.FIELDS (SUBJECT FROM)") == (
        b"From: Alice Example <alice@else.test>\r\nSubject: simple\r\n\r\n")
    assert b"Subject" not in section(SIMPLE, "HEADER.FIELDS.NOT (SUBJECT)")


def test_bodystructure_multipart_alternative():
    assert FE.bodystructure(mime.parse(crlf(ALTERNATIVE)), ext=True) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 16 0 NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "b1") NIL NIL NIL)')


def test_bodystructure_nested_with_message_rfc822_and_attachment():
    assert FE.bodystructure(mime.parse(crlf(NESTED)), ext=False) == (
        b'((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 17 0) "alternative")'
        b'("message" "rfc822" NIL NIL NIL "7bit" 128 ("Thu, 05 Mar 2026 08:00:00 +0000" "forwarded"'
        b' ((NIL NIL "gina" "else.test")) ((NIL NIL "gina" "else.test")) ((NIL NIL "gina" "else.test"))'
        b' ((NIL NIL "frank" "else.test")) NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL'
        b' "7bit" 24 1) 6)("application" "pdf" ("name" "doc.pdf") NIL NIL "base64" 12) "mixed")')


def test_envelope_keeps_encoded_words_and_sends_8bit_as_literal():
    env = FE.envelope(mime.parse(crlf(NON_ASCII)))
    assert env.startswith(b'("Fri, 06 Mar 2026 09:30:00 +0100" "=?utf-8?b?Q2Fmw6kgZMOpasOgIHZ1?="'
                          b' (("=?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?=" NIL "renee" "else.test"))')
    raw = mime.parse(crlf(b"Subject: caf\xc3\xa9\n\nx\n"))
    assert FE.envelope(raw).startswith(b'(NIL {5}\r\ncaf\xc3\xa9 NIL')


def search(data: bytes, *keys) -> bool:
    _, pred = SE.parse([Atom(k) if isinstance(k, str) else k for k in keys])
    return pred(SE.Context(1, msg(data), frozenset({"\\Seen"}), False, 1, 1))


@pytest.mark.parametrize("keys,hit", [
    (("SUBJECT", b"caf\xc3\xa9"), True),  # RFC 2047 decoded before matching
    (("BODY", "DEJA"), False), (("BODY", "déjà".encode()), True),  # UTF-8, case-insensitive
    (("FROM", "renee"), True), (("TO", "nobody"), False), (("SEEN",), True), (("UNSEEN",), False),
    (("NOT", "SEEN"), False), (("OR", "UNSEEN", "FROM", "RENEE"), True),
    (("SENTON", "6-Mar-2026"), True), (("SENTBEFORE", "6-Mar-2026"), False), (("SENTSINCE", "1-Mar-2026"), True),
    (("HEADER", "Message-ID", "utf8@"), True), (("LARGER", "10"), True), (("SMALLER", "10"), False),
    (("UID", "1"), True), (("1:*",), True), (("TEXT", "servi"), True), (("KEYWORD", "$x"), False),
])
def test_search_keys(keys, hit):
    assert search(NON_ASCII, *keys) is hit


@pytest.mark.parametrize("keys", [("FROM",), ("BOGUS",), ("OR", "SEEN"), ("BEFORE", "yesterday"), ()])
def test_bad_search_keys(keys):
    with pytest.raises(ParseError):
        SE.parse([Atom(k) for k in keys])
