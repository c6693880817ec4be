"""Property tests (hypothesis) for the IMAP command parser and the MIME walker (issue 11, regression net): whatever
the bytes, the parser raises nothing but its own ParseError (answered BAD), and the walker raises nothing at all."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courrier.access.imap import fetch as FE
from courrier.access.imap import search as SE
from courrier.access.imap.cmd_mailbox import parse_flags
from courrier.access.imap.parser import Atom, ParseError, date_time, sequence_set, tokenize
from courrier.access.imap.pattern import Pattern
from courrier.mailbox import mime
from courrier.mailbox.index import Msg

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# bytes biased toward IMAP syntax, so the search reaches deep into the grammar instead of failing at the first octet
IMAP_BYTES = st.lists(st.sampled_from([
    b" ", b"(", b")", b"[", b"]", b"<", b">", b".", b'"', b"\\", b"{", b"}", b"+", b"*", b"%", b":", b",", b"\x00",
    b"1", b"0", b"4294967296", b"BODY", b"BODY.PEEK", b"HEADER.FIELDS", b"TEXT", b"MIME", b"NOT", b"OR", b"FLAGS",
    b"SEEN", b"\\Seen", b"UID", b"SUBJECT", b"a", b"\xff", b"\r", b"\n", b"\x7f",
]) | st.binary(max_size=3), max_size=60).map(b"".join)


def commands_of(text: bytes, literals: list[bytes]) -> list:
    try:
        return tokenize(text, literals)
    except ParseError:
        return []


@SETTINGS
@given(st.binary(max_size=200), st.lists(st.binary(max_size=20), max_size=3))
def test_tokenizer_raises_only_parse_errors_on_random_bytes(text, literals):
    commands_of(text, literals)


@SETTINGS
@given(IMAP_BYTES, st.lists(st.binary(max_size=20), max_size=3))
def test_every_argument_reader_raises_only_parse_errors(text, literals):
    """The readers a command's arguments go through (RFC 3501 §9): SEARCH keys, fetch-atts, flags, sets, dates."""
    toks = commands_of(text, literals)
    for reader in (lambda t: SE.parse(t), lambda t: FE.parse_items(t), lambda t: FE.parse_items(t[0]) if t else 0,
                   lambda t: parse_flags(t), lambda t: sequence_set(t[0]) if t else 0,
                   lambda t: date_time(t[0]) if t else 0, lambda t: Pattern(str(t[0])) if t else 0):
        try:
            reader(toks)
        except ParseError:
            pass


@SETTINGS
@given(IMAP_BYTES)
def test_fetch_items_from_one_atom(text):
    try:
        FE.parse_items(Atom(text.decode("latin-1")))
    except ParseError:
        pass


MIME_BYTES = st.lists(st.sampled_from([
    b"\r\n", b"Content-Type: multipart/mixed; boundary=x\r\n", b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; charset=x-bad\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"--x\r\n", b"--x--\r\n", b"=ZZ", b"QUJD", b"\xff\xfe",
    b"Subject: =?x?q?a?=\r\n", b" folded\r\n", b":\r\n", b"Content-Type: multipart/digest; boundary=\"x\"\r\n",
]) | st.binary(max_size=4), max_size=80).map(b"".join)


@SETTINGS
@given(MIME_BYTES, st.text(max_size=8))
def test_mime_walker_and_fetch_rendering_never_raise(data, needle):
    root = mime.parse(data)
    for leaf in mime.leaves(root):
        mime.part_text(leaf)
    FE.bodystructure(root, ext=True)
    m = FE.Message(Msg(1, "b", "new/b", frozenset(), len(data), 0.0, 1), lambda: data)
    items = FE.parse_items([Atom(a) for a in ("BODY[1.1]", "BODY[2.HEADER]", "BODY[1.MIME]", "BODYSTRUCTURE",
                                              "ENVELOPE", "BODY[TEXT]<1.5>")])
    FE.render(m, 1, items, frozenset(), True)
    _, pred = SE.parse([Atom("OR"), Atom("BODY"), needle.encode(), Atom("TEXT"), needle.encode()])
    pred(SE.Context(1, m, frozenset(), False, 1, 1))
