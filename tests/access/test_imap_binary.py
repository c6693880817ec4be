"""BINARY (RFC 3516) on the raw protocol over a real listener: FETCH BINARY[part] decodes base64 and
quoted-printable, BINARY.SIZE, partial fetches, \\Seen, literal8 for NUL, [UNKNOWN-CTE], APPEND with literal8."""

from __future__ import annotations

import base64

import pytest

from tests.access.imapsrv import listener
from tests.access.wire import Wire

PAYLOAD = bytes(range(256)) * 3  # NUL and every other octet
B64 = base64.encodebytes(PAYLOAD).decode()
MULTI = (
    "From: a@x.test\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n"
    "--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "caf=C3=A9 au lait, une ligne tr=\nes longue\n"
    "--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + B64 +
    "--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 f\n`\nend\n"
    "--XX--\n"
).encode()
PLAIN = b"From: a@x.test\nSubject: plain\n\nplain body\n"


@pytest.fixture
def w(tmp_path):
    with listener(tmp_path, [MULTI, PLAIN]) as (port, _store):
        c = Wire(port)
        assert c.status("SELECT INBOX") == b"OK"
        yield c
        c.close()


def item(lines: list[bytes], label: bytes) -> bytes:
    """The octets of ``label``'s literal (or literal8) in the FETCH response."""
    data = b"".join(lines)
    i = data.index(label + b" ") + len(label) + 1
    if data[i:i + 1] == b"~":
        i += 1
    assert data[i:i + 1] == b"{", data[i:i + 40]
    j = data.index(b"}\r\n", i)
    n = int(data[i + 1:j])
    return data[j + 3:j + 3 + n]


def test_capability(w):
    assert "BINARY" in w.untagged(w.cmd("CAPABILITY"), b"CAPABILITY")[0].decode().split()


def test_binary_decodes_quoted_printable_and_base64(w):
    lines = w.cmd("FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[2])")
    assert lines[-1].split()[1] == b"OK"
    assert item(lines, b"BINARY[1]") == "café au lait, une ligne tres longue".encode()
    got = item(lines, b"BINARY[2]")
    assert got == PAYLOAD
    assert b"BINARY[2] ~{%d}\r\n" % len(PAYLOAD) in b"".join(lines)  # NUL inside: literal8 (§4.2)
    assert b"BINARY[1] {" in b"".join(lines)  # no NUL: an ordinary literal


def test_binary_size_and_partial(w):
    lines = w.cmd("FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[1])")
    assert b"BINARY.SIZE[2] %d" % len(PAYLOAD) in lines[0]
    assert b"BINARY.SIZE[1] %d" % len("café au lait, une ligne tres longue".encode()) in lines[0]
    lines = w.cmd("FETCH 1 BINARY.PEEK[2]<256.10>")
    assert item(lines, b"BINARY[2]<256>") == PAYLOAD[256:266]
    assert item(w.cmd("FETCH 2 BINARY.PEEK[1]"), b"BINARY[1]") == b"plain body\r\n"


def test_binary_sets_seen_and_peek_does_not(w):
    assert b"\\Seen" not in b"".join(w.cmd("FETCH 2 (BINARY.PEEK[1] FLAGS)"))
    assert b"\\Seen" not in b"".join(w.cmd("FETCH 2 (BINARY.SIZE[1] FLAGS)"))
    w.cmd("FETCH 2 BINARY[1]")
    assert b"\\Seen" in b"".join(w.cmd("FETCH 2 FLAGS"))


def test_unknown_cte_rfc_3516_section_4_3(w):
    lines = w.cmd("FETCH 1 BINARY.PEEK[3]")
    assert lines[-1].split()[1:3] == [b"NO", b"[UNKNOWN-CTE]"]
    assert w.status("FETCH 1 BODY.PEEK[3]") == b"OK"  # BODY[] sends it as stored


def test_bad_binary_sections(w):
    assert w.status("FETCH 1 BINARY[1.HEADER]") == b"BAD"
    assert w.status("FETCH 1 BINARY.SIZE[1]<0.5>") == b"BAD"
    assert b"BINARY[9] NIL" in b"".join(w.cmd("FETCH 1 BINARY.PEEK[9]"))


def test_append_literal8_keeps_nul(w):
    msg = b"From: a@x.test\r\nSubject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02 raw\r\n"
    w.send(b"a1 APPEND INBOX ~{%d}\r\n" % len(msg))
    assert w.line().startswith(b"+ ")
    w.send(msg + b"\r\n")
    got = w.read_response(b"a1")
    assert got[-1].split()[1] == b"OK" and b"APPENDUID" in got[-1]
    assert w.cmd("NOOP")  # EXISTS
    lines = w.cmd("FETCH 3 BINARY.PEEK[1]")
    assert item(lines, b"BINARY[1]") == b"\x00\x01\x02 raw\r\n"
    # LITERAL+ form too
    w.send(b"a2 APPEND INBOX (\\Seen) ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert w.read_response(b"a2")[-1].split()[1] == b"OK"
    # an ordinary literal may not carry NUL (RFC 3501 §9 CHAR8)
    w.send(b"a3 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert w.read_response(b"a3")[-1].split()[1] == b"BAD"


def test_binary_of_hostile_messages_answers_and_the_session_goes_on(tmp_path):
    """BINARY over what an attacker mails: 1,000 nested multiparts, 5,000 parts, broken base64, a base64 part
    with no line breaks at all, and a section path 60 parts deep. Each FETCH answers (a value, NIL or
    [UNKNOWN-CTE]) and the session stays usable."""
    from tests.access import hostile

    one_line = (b"From: m@evil.test\nSubject: oneline\nContent-Type: application/octet-stream\n"
                b"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(b"\xff" * 600_000) + b"\n")
    corpus = [hostile.deep(1000), hostile.many_parts(5000), hostile.broken_base64(), one_line]
    with listener(tmp_path, corpus) as (port, _store):
        c = Wire(port)
        assert c.status("SELECT INBOX") == b"OK"
        deep_path = ".".join(["1"] * 60)
        for command in ("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])", f"FETCH 1 BINARY.PEEK[{deep_path}]",
                        "FETCH 2 (BINARY.SIZE[4999] BINARY.PEEK[5000] BINARY.PEEK[5001])",
                        "FETCH 3 BINARY.PEEK[1]", "FETCH 4 BINARY.SIZE[1]"):
            assert c.cmd(command)[-1].split()[1] == b"OK", command
        assert f"BINARY[{deep_path}] NIL".encode() in b"".join(c.cmd(f"FETCH 1 BINARY.PEEK[{deep_path}]"))
        lines = c.cmd("FETCH 2 (BINARY.PEEK[5000] BINARY.PEEK[5001])")
        assert item(lines, b"BINARY[5000]").startswith(b"part 4999") and b"BINARY[5001] NIL" in b"".join(lines)
        assert b"BINARY.SIZE[1] 600000" in b"".join(c.cmd("FETCH 4 BINARY.SIZE[1]"))
        lines = c.cmd("FETCH 4 BINARY.PEEK[1]<599990.20>")
        assert item(lines, b"BINARY[1]<599990>") == b"\xff" * 10
        assert c.status("NOOP") == b"OK"
        c.close()
