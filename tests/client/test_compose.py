"""compose: the MIME that ``courrier send`` builds, read back with the stdlib parser as a receiver would."""

import email
import email.policy
from datetime import UTC, datetime

import pytest

from courrier.client import compose
from courrier.client.compose import ComposeError, Draft


def parsed(d: Draft) -> email.message.EmailMessage:
    raw = compose.to_bytes(compose.build(d))
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_plain_message_has_date_message_id_and_encoded_words():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    d = Draft(sender="Zoë Dupré <zoe@example.test>", to=["bob@example.test"], cc=["Ann <ann@example.test>"],
              subject="Héllo wörld", body="Ça va ?\n")
    raw = compose.to_bytes(compose.build(d, now=now))
    assert b"=?utf-8?" in raw and "Héllo".encode() not in raw  # RFC 2047 encoded words, 7-bit headers
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m["Subject"] == "Héllo wörld"
    assert m["From"].addresses[0].display_name == "Zoë Dupré"
    assert m["Cc"].addresses[0].addr_spec == "ann@example.test"
    assert m["Date"].datetime == now
    assert m["Message-ID"].startswith("<") and m["Message-ID"].endswith("@example.test>")
    assert m.get_content_type() == "text/plain"
    assert m.get_content() == "Ça va ?\r\n"  # the parser keeps the wire's CRLF
    assert m["Content-Transfer-Encoding"] == "quoted-printable"  # 7-bit safe without 8BITMIME


def test_html_alternative_and_attachments():
    d = Draft(sender="a@x.test", to=["b@y.test"], subject="s", body="plain", html="<p>Hi <b>there</b></p>",
              attachments=[])
    m = parsed(d)
    assert m.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in m.iter_parts()] == ["text/plain", "text/html"]
    assert m.get_body(("html",)).get_content().strip() == "<p>Hi <b>there</b></p>"


def test_attachments_keep_bytes_type_and_non_ascii_name(tmp_path):
    pdf = tmp_path / "rapport été.pdf"
    pdf.write_bytes(b"%PDF-1.4\n\x00\xff binary")
    blob = tmp_path / "data.bin"
    blob.write_bytes(bytes(range(256)))
    m = parsed(Draft(sender="a@x.test", to=["b@y.test"], body="see attached", html="<p>see</p>",
                     attachments=[pdf, blob]))
    assert m.get_content_type() == "multipart/mixed"
    atts = list(m.iter_attachments())
    assert [a.get_filename() for a in atts] == ["rapport été.pdf", "data.bin"]
    assert [a.get_content_type() for a in atts] == ["application/pdf", "application/octet-stream"]
    assert atts[0].get_content() == pdf.read_bytes() and atts[1].get_content() == blob.read_bytes()
    assert m.get_body(("plain",)).get_content().strip() == "see attached"
    assert all("MIME-Version" not in p for p in m.walk() if p is not m)


def test_html_only_gets_a_text_alternative():
    m = parsed(Draft(sender="a@x.test", to=["b@y.test"],
                     html="<html><head><style>p {color: red}</style></head><body><p>Hello</p><p>World</p></body>"))
    assert m.get_body(("plain",)).get_content().splitlines() == ["Hello", "World"]


def test_header_from_may_differ_from_the_envelope_sender():
    d = Draft(sender="alice@x.test", to=["bob@y.test"], bcc=["carol@z.test"],
              headers=[("From", "CEO <ceo@bank.test>"), ("X-Campaign", "nov")])
    m = parsed(d)
    assert m["From"] == "CEO <ceo@bank.test>" and len(m.get_all("From")) == 1
    assert m["X-Campaign"] == "nov"
    assert "Bcc" not in m and b"carol" not in compose.to_bytes(compose.build(d))
    assert compose.envelope(d) == ("alice@x.test", ["bob@y.test", "carol@z.test"])
    assert compose.envelope(d, "bounce@x.test")[0] == "bounce@x.test"


def test_envelope_recipients_are_unique():
    d = Draft(sender="a@x.test", to=["B <b@y.test>", "c@y.test"], cc=["b@y.test"], bcc=["C@y.test"])
    assert compose.envelope(d)[1] == ["b@y.test", "c@y.test"]


@pytest.mark.parametrize("bad", ["no colon", ": empty name", "Bad Name: x", "X-A: two\nlines"])
def test_bad_header_options_are_refused(bad):
    with pytest.raises(ComposeError):
        compose.parse_header_option(bad)


def test_bad_addresses_and_bcc_header_are_refused(tmp_path):
    with pytest.raises(ComposeError):
        compose.envelope(Draft(sender="not an address", to=["b@y.test"]))
    with pytest.raises(ComposeError):
        compose.build(Draft(sender="a@x.test", to=["b@y.test"], headers=[("Bcc", "c@y.test")]))
    with pytest.raises(ComposeError):
        compose.build(Draft(sender="a@x.test", to=["b@y.test"], attachments=[tmp_path / "missing"]))


def test_eml_envelope_from_headers():
    raw = b"From: A <a@x.test>\r\nTo: b@y.test, C <c@y.test>\r\nCc: d@y.test\r\nSubject: s\r\n\r\nhi\r\n"
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert compose.eml_envelope(m) == ("a@x.test", ["b@y.test", "c@y.test", "d@y.test"])
