"""The DATA reader: RFC 5321 §4.1.1.4 end marker, §4.5.2 transparency, bare LF, smuggling, line limits."""

import io

import pytest

from courrier.smtp.reader import DataReader


def read(chunks, max_size=10_000_000):
    sink = io.BytesIO()
    r = DataReader(sink, max_size)
    rest = None
    for c in chunks:
        rest = r.feed(c)
        if rest is not None:
            break
    return r, sink.getvalue(), rest


def test_end_marker_and_rest():
    r, body, rest = read([b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"])
    assert body == b"Subject: x\r\n\r\nhello\r\n" and rest == b"QUIT\r\n" and r.done


def test_empty_message():
    r, body, rest = read([b".\r\n"])
    assert body == b"" and rest == b""


@pytest.mark.parametrize("split", range(1, 30))
def test_any_chunking(split):
    data = b"a\r\n..dot\r\n.\r\n"
    r, body, rest = read([data[:split], data[split:]])
    assert body == b"a\r\n.dot\r\n" and rest == b""


@pytest.mark.parametrize("smuggle", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"])
def test_smuggling_sequences_do_not_end_data(smuggle):
    r, body, rest = read([b"x" + smuggle + b"MAIL FROM:<evil@x>\r\n", b"\r\n.\r\n"])
    assert r.done and rest == b""
    assert b"MAIL FROM:<evil@x>" in body  # kept as content, not executed as a command


def test_bare_lf_normalised():
    r, body, _ = read([b"a\nb\r\nc\n.\r\n"])
    # "c\n" then ".\r\n": the dot line follows a bare LF, so it is not the end marker; data goes on.
    assert r.done is False
    r, body, _ = read([b"a\nb\r\nc\r\n.\r\n"])
    assert body == b"a\r\nb\r\nc\r\n"


def test_line_too_long_and_size():
    r, _, _ = read([b"x" * 999 + b"\r\n.\r\n"])
    assert r.line_too_long
    r, _, _ = read([b"x" * 998 + b"\r\n.\r\n"])
    assert not r.line_too_long
    r, _, _ = read([b"x" * 5000, b"x" * 5000, b"\r\n.\r\n"])
    assert r.line_too_long and r.done
    r, _, _ = read([b"y" * 100 + b"\r\n"] * 50 + [b".\r\n"], max_size=1000)
    assert r.too_big and r.done


def test_random_chunkings_agree_with_the_reference():
    import random

    rnd = random.Random(5321)
    for _ in range(300):
        lines = [rnd.choice([b"", b".", b"..", b".x", b"abc", b"x" * rnd.randint(0, 120)]) for _ in range(30)]
        wire = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines) + b".\r\nNEXT"
        expected = b"".join(ln + b"\r\n" for ln in lines)
        cuts = sorted(rnd.sample(range(1, len(wire)), 5))
        pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
        sink = io.BytesIO()
        r = DataReader(sink, 10_000_000)
        for k, piece in enumerate(pieces):
            rest = r.feed(piece)
            if rest is not None:
                assert rest + b"".join(pieces[k + 1:]) == b"NEXT"
                break
        assert r.done and sink.getvalue() == expected and not r.line_too_long
