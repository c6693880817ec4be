"""Messages read in pieces (``mailbox/api.py:Stream``): the CRLF conversion, slices and POP3's byte-stuffing give
the octets the whole-message functions give, wherever the pieces are cut."""

from __future__ import annotations

import random

import pytest

from courrier.access.pop3.protocol import Stuffer, _head_and_lines
from courrier.mailbox.api import Stream, StreamBroken, lf_to_crlf, to_crlf

STORED = (b"Subject: s\nX: a\r\n\n.dot first\nline\r\n\r..\n.\n\rlone CR\nend" * 7)


def _cuts(data: bytes, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rnd.randint(1, 9)
        out.append(data[i:i + n])
        i += n
    return out


def _stuffed(crlf: bytes) -> bytes:
    """RFC 1939 §3 over the whole message (what RETR sent before it streamed)."""
    s = (b"." + crlf if crlf.startswith(b".") else crlf).replace(b"\r\n.", b"\r\n..")
    return s + (b"" if s.endswith(b"\r\n") or not s else b"\r\n") + b".\r\n"


@pytest.mark.parametrize("seed", range(20))
def test_pieces_cut_anywhere_give_the_whole_message_functions_octets(seed):
    whole = to_crlf(STORED)
    pieces = _cuts(STORED, seed)
    assert b"".join(lf_to_crlf(pieces)) == whole
    st = Stream(lambda: iter(pieces))
    assert st.size == len(whole)
    rnd = random.Random(seed)
    for _ in range(10):
        start, length = rnd.randint(0, len(whole) + 3), rnd.choice([None, rnd.randint(1, len(whole))])
        want = whole[start:] if length is None else whole[start:start + length]
        assert b"".join(st.slice(start, length)) == want and st.length(start, length) == len(want)
    stuffer = Stuffer()
    out = b"".join(stuffer.feed(c) for c in _cuts(whole, seed + 100)) + stuffer.end()
    assert out == _stuffed(whole)


def test_top_reads_only_what_it_sends_and_sends_what_it_did():
    line = b"x" * 70 + b"\r\n"
    whole = b"Subject: t\r\n\r\n" + line * 50000  # 3.5 MB
    blocks = [whole[i:i + 65536] for i in range(0, len(whole), 65536)]
    read = []

    def chunks():
        for b in blocks:
            read.append(b)
            yield b

    head = _head_and_lines(Stream(chunks), 3)
    assert head.startswith(whole[:14 + 3 * 72]) and len(read) == 1  # no size counted, one block read


def test_a_stream_that_comes_up_short_raises_instead_of_lying_about_its_size():
    parts = [[b"abc\n", b"def\n"], [b"abc\n"]]
    st = Stream(lambda: iter(parts.pop(0)))
    assert st.size == 10  # announced: the second pass must give as many
    with pytest.raises(StreamBroken):
        list(st.chunks())
