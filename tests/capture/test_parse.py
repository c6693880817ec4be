"""MIME → index fields on awkward real-world shapes: encoded words, 8-bit headers, RFC 2231 and RFC 2047 file names,
unknown charsets, inline images, broken structure. Nothing here may raise."""

from datetime import UTC, datetime

from courrier.capture.parse import find_part, html_to_text, parse, part_bytes


def test_encoded_words_and_raw_utf8_headers():
    data = ("From: =?iso-8859-1?q?Andr=E9?= <andre@x.test>\n"
            "To: \"Doe, John\" <john@x.test>, =?utf-8?b?w4lsb2R5?= <elody@x.test>\n"
            "Subject: Caf\u00e9 cr\u00e8me\nMessage-ID: <abc@x.test>\nDate: Tue, 1 Dec 2026 10:00:00 +0100\n"
            "X-Tags: one, two\n\nbody\n").encode("utf-8")
    _, p = parse(data)
    assert p.from_ == {"Name": "André", "Address": "andre@x.test"}
    assert p.to == [{"Name": "Doe, John", "Address": "john@x.test"}, {"Name": "Élody", "Address": "elody@x.test"}]
    assert p.subject == "Café crème" and p.message_id == "abc@x.test"
    assert p.date == datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()
    assert p.x_tags == ["one", "two"]


def test_parts_filenames_inline_and_charsets():
    data = b"""From: a@x.test
To: b@x.test
Subject: parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=OUT

--OUT
Content-Type: multipart/related; boundary=REL

--REL
Content-Type: text/html; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

<p>Caf=E9 <img src=3D"cid:logo@x"></p><script>x()</script>
--REL
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--REL--
--OUT
Content-Type: text/plain; charset=x-unknown-charset

texte \xc3\xa9crit
--OUT
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt

aGVsbG8=
--OUT
Content-Type: application/pdf; name="=?utf-8?q?facture_n=C2=B01.pdf?="
Content-Disposition: attachment; filename="=?utf-8?q?facture_n=C2=B01.pdf?="
Content-Transfer-Encoding: base64

JVBERg==
--OUT--
"""
    msg, p = parse(data)
    assert p.html.startswith("<p>Café") and html_to_text(p.html) == "Café"
    assert p.text == "texte écrit"  # unknown charset: read as UTF-8
    assert [(i.part_id, i.content_type, i.content_id) for i in p.inline] == [("1.2", "image/png", "logo@x")]
    assert [(a.part_id, a.filename) for a in p.attachments] == [("3", "résumé.txt"), ("4", "facture n°1.pdf")]
    assert part_bytes(find_part(msg, "1.2")) == b"\x89PNG\r\n\x1a\n"
    assert part_bytes(find_part(msg, "4")) == b"%PDF"
    assert find_part(msg, "9") is None


def test_broken_messages_do_not_raise():
    for data in (b"", b"no header at all", b"Subject: =?utf-8?q?unterminated\n\nx",
                 b"Content-Type: multipart/mixed; boundary=X\n\n--X\nContent-Type: text/plain\n\nnever closed",
                 b"From: <>\nTo: ,,,\nDate: not a date\n\n\xff\xfe",
                 b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!notbase64"):
        _, p = parse(data)
        assert isinstance(p.snippet(), str)


def test_snippet():
    _, p = parse(b"Subject: s\n\n" + b"word " * 200)
    assert len(p.snippet()) <= 253 and p.snippet().endswith("word...")
    _, p = parse(b"Content-Type: text/html\n\n<html><style>x{}</style><body><h1>Title</h1><p>a &amp; b</p></body>")
    assert p.snippet() == "Title a & b"


def test_snippet_from_a_window_is_the_whole_texts():
    """The snippet is made from a window of the text (issue 17); it must read as if made from all of it."""
    import random

    from courrier.capture.parse import SNIPPET_LENGTH, Parsed

    def whole(src: str) -> str:
        s = " ".join(src.split())
        return s if len(s) <= SNIPPET_LENGTH else s[:SNIPPET_LENGTH].rstrip() + "..."

    rnd = random.Random(17)
    cases = ["x" * 5000 + " tail", "a " * 3000, " \n\t" * 2000 + "late words", "word " * 49 + "x" * 3000]
    for _ in range(500):
        words = ["".join(rnd.choice("ab\n \t") for _ in range(rnd.randint(0, 40))) for _ in range(rnd.randint(0, 200))]
        cases.append(rnd.choice([" ", "\n", "   ", ""]).join(words))
    for src in cases:
        if src.strip():
            assert Parsed(text=src).snippet() == whole(src), src[:80]
