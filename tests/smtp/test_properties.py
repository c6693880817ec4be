"""Property-based tests (hypothesis) for the SMTP input parsers: the envelope address parser, the ESMTP parameter
parser, xtext, and the DATA reader.

Each property is what an attacker's input may never break: parsers either return a value or raise their own
``AddressError`` (answered 501/553), and the DATA reader gives the same message whatever the TCP segmentation.
"""

from __future__ import annotations

import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courrier.mail.path import (
    AddressError,
    parse_address,
    parse_params,
    parse_path,
    split_path_and_params,
    xtext_decode,
    xtext_encode,
)
from courrier.smtp.reader import DataReader

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text an attacker can put in a command line: every code point but the line end that would end the command.
hostile_text = st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=600)
atext = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=20)
label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")


@FAST
@given(hostile_text)
def test_address_parser_answers_or_refuses(text: str) -> None:
    for utf8 in (True, False):
        try:
            a = parse_address(text, utf8=utf8)
        except AddressError:
            continue
        assert len(a.local.encode()) <= 64 and len(a.domain.encode()) <= 255
        assert utf8 or str(a).isascii()


@FAST
@given(hostile_text, st.sampled_from(["FROM", "TO"]), st.booleans())
def test_command_argument_parsing_answers_or_refuses(text: str, keyword: str, null: bool) -> None:
    for arg in (text, f"{keyword}:{text}", f"{keyword}:<{text}>", f"{keyword}: <{text}> {text}"):
        try:
            path, params = split_path_and_params(arg, keyword)
            parse_path(path, allow_null=null, utf8=True)
            parse_params(params)
        except AddressError:
            pass


@FAST
@given(st.lists(atext, min_size=1, max_size=3), st.lists(label, min_size=1, max_size=4))
def test_valid_addresses_round_trip(local_atoms: list[str], labels: list[str]) -> None:
    local = ".".join(local_atoms)
    if len(local) > 64:
        return
    a = parse_address(f"{local}@{'.'.join(labels)}")
    assert parse_address(str(a)) == a
    assert parse_path(f"<@relay.test:{a}>", allow_null=False, utf8=True) == a  # source route dropped


@FAST
@given(st.text(max_size=200))
def test_xtext_round_trips(s: str) -> None:
    assert xtext_decode(xtext_encode(s)) == s


@FAST
@given(st.text(max_size=100))
def test_xtext_decoder_answers_or_refuses(s: str) -> None:
    try:
        xtext_decode(s)
    except AddressError:
        pass


def _stuff(body: bytes) -> bytes:
    """What a client sends for ``body`` (RFC 5321 §4.5.2): leading dots doubled, CRLF.CRLF appended."""
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\r\n.", b"\r\n..") + b".\r\n"


lines = st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=30)


@FAST
@given(lines, st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40), st.binary(max_size=40))
def test_data_reader_is_independent_of_segmentation(body_lines: list[bytes], cuts: list[int], after: bytes) -> None:
    body = b"".join(line + b"\r\n" for line in body_lines)
    wire = _stuff(body) + after
    sink = io.BytesIO()
    reader = DataReader(sink, max_size=1 << 20)
    pos, rest, i = 0, None, 0
    while rest is None and pos < len(wire):
        n = cuts[i % len(cuts)]
        rest = reader.feed(wire[pos: pos + n])
        pos, i = pos + n, i + 1
    assert rest is not None, "the end marker was not seen"
    assert sink.getvalue() == body
    assert rest + wire[pos:] == after  # pipelined bytes after the end marker are handed back untouched


@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=20))
def test_data_reader_never_raises_and_bounds_what_it_keeps(noise: bytes, cuts: list[int]) -> None:
    sink = io.BytesIO()
    reader = DataReader(sink, max_size=1000)
    pos, i = 0, 0
    while pos < len(noise):
        n = cuts[i % len(cuts)]
        if reader.feed(noise[pos: pos + n]) is not None:
            break
        pos, i = pos + n, i + 1
    assert len(reader._partial) <= 2 * 1000 + 2  # an endless line is streamed, never accumulated
