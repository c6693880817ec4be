"""FETCH of a large message from its Stream (fetch.py ``Piece``): the parts, once their pieces are read, are the very
octets the whole-message rendering gives, for every whole-message item, partials and literal8 included."""

from __future__ import annotations

import pytest

from courrier.access.imap import fetch as FE
from courrier.access.imap.parser import Atom
from courrier.mailbox.api import Msg, Stream, to_crlf

STORED = b"Subject: big\nFrom: a@b.test\n\n" + b"".join(b"line %d .x\n" % i for i in range(200_000))
NUL = STORED + b"\x00tail\n"


def _items(text: str) -> list[FE.Item]:
    return FE.parse_items([Atom(t) for t in text.split()])


def _joined(parts) -> bytes:
    return b"".join(p if isinstance(p, bytes) else b"".join(p.chunks()) for p in parts)


@pytest.mark.parametrize("stored", [STORED, NUL])
@pytest.mark.parametrize("items", ["RFC822 FLAGS", "BODY.PEEK[] UID", "BODY[]<100.5000> RFC822.SIZE",
                                   "BINARY.PEEK[] FLAGS", "BINARY[]<7.100000>", "BINARY.SIZE[] UID",
                                   "FLAGS BODY.PEEK[]<2500000> BODY.PEEK[HEADER]"])
def test_streamed_parts_equal_the_whole_rendering(stored, items):
    crlf = to_crlf(stored)
    m = Msg(7, "b", "f", frozenset(), len(crlf), 0.0, 1)
    assert m.size > FE.STREAM_ABOVE
    blocks = [stored[i:i + 65537] for i in range(0, len(stored), 65537)]
    streamed = FE.Message(m, lambda: crlf, lambda: crlf[:crlf.find(b"\r\n\r\n") + 4],
                          lambda: Stream(lambda: iter(blocks)))
    whole = FE.Message(m, lambda: crlf, lambda: crlf[:crlf.find(b"\r\n\r\n") + 4])
    its = _items(items)
    a = FE.render(streamed, 3, its, frozenset({"\\Seen"}), True)
    b = FE.render(whole, 3, its, frozenset({"\\Seen"}), True)
    assert isinstance(b, bytes)
    if items.startswith("BINARY.SIZE"):
        assert a == b
    else:
        assert isinstance(a, list) and _joined(a) == b
