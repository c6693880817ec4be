"""MIME offsets: every part's header and body are exact slices of the message (what BODY[n] must return)."""

from courrier.mailbox import mime
from tests.access.messages import ALTERNATIVE, NESTED, crlf


def test_multipart_alternative_parts_are_exact_slices():
    data = crlf(ALTERNATIVE)
    root = mime.parse(data)
    assert root.ctype == "multipart/alternative" and root.param("boundary") == "b1"
    assert [c.ctype for c in root.children] == ["text/plain", "text/html"]
    assert root.children[0].body == b"plain part"
    assert root.children[1].body == b"<p>html part</p>"
    assert root.children[1].header == b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"


def test_nested_multipart_and_message_rfc822():
    root = mime.parse(crlf(NESTED))
    alt, fwd, pdf = root.children
    assert [c.body for c in alt.children] == [b"inner plain", b"<b>inner html</b>"]
    assert alt.body.endswith(b"--inner--\r\n")  # the blank line before --outer belongs to the delimiter
    assert fwd.ctype == "message/rfc822" and fwd.message is not None
    assert fwd.message.get("subject") == b"forwarded"
    assert fwd.message.body == b"forwarded body\r\nline two"
    assert pdf.param("name") == "doc.pdf" and pdf.body == b"JVBERi0xLjQK"


def test_header_unfolding_and_missing_content_type_defaults():
    p = mime.parse(b"Subject: a\r\n  folded\r\nX: y\r\n\r\nbody")
    assert p.get("subject") == b"a  folded"
    assert p.ctype == "text/plain" and p.param("charset") == "us-ascii"
    assert mime.parse(b"\r\nonly body").body == b"only body"
    assert mime.parse(b"Subject: no body").body == b""


def test_garbage_never_raises():
    for data in (b"", b"\r\n", b"Content-Type: multipart/mixed\r\n\r\nno boundary",
                 b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x--",
                 b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x", b"::::\r\n\r\n"):
        mime.parse(data)
