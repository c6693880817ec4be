"""The hostile corpus: messages an attacker (or a broken mailer) sends, each aimed at one reader of the server.

Every message is built here, deterministically, so the corpus needs no binary fixtures and a reviewer reads what each
one attacks. ``python -m tests.hostile`` writes them to ``tests/data/hostile/`` as ``.eml`` files (the small ones are
committed there, for use with other tools such as swaks ``--data`` or mutt); the regression net
(tests/e2e/test_70_hostile_corpus.py) delivers every one through MX, submission and capture and reads it back over
IMAP, POP3 and the web API.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

HEAD = b"From: Mallory <bob@example.test>\r\nTo: bob@example.test\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
NEEDLE = b"needle"  # every body carries it, so SEARCH BODY has something to find


def _msg(subject: str, extra_headers: bytes = b"", body: bytes = b"needle\r\n") -> bytes:
    return HEAD + f"Subject: {subject}\r\n".encode() + extra_headers + b"\r\n" + body


def deep_multipart(levels: int = 1000) -> bytes:
    """1,000 nested multipart/mixed: recursion in every MIME walker (RecursionError killed capture start)."""
    opens = b"".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n".encode()
                     for i in range(levels))
    leaf = f"--b{levels}\r\nContent-Type: text/plain\r\n\r\nneedle at the bottom\r\n--b{levels}--\r\n".encode()
    closes = b"".join(f"--b{i}--\r\n".encode() for i in reversed(range(levels)))
    return _msg("deep multipart", b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n",
                opens + leaf + closes)


def deep_rfc822(levels: int = 300) -> bytes:
    """message/rfc822 inside message/rfc822, 300 deep: the other recursion (ENVELOPE/BODYSTRUCTURE of parts)."""
    inner = b"Subject: innermost\r\n\r\nneedle\r\n"
    for i in range(levels):
        inner = (f"Subject: level {i}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n".encode()
                 + inner)
    return _msg("deep rfc822", b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n", inner)


def unknown_charsets() -> bytes:
    """Charsets no codec knows, in the body and in encoded words: decoders must fall back, not fail the mailbox."""
    return _msg("=?x-no-such-charset?B?bmVlZGxl?= and =?utf-7?Q?+AGQ-?=",
                b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"x-unknown-zz\"\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n",
                b"needle \xe9\xff\xfe bytes no charset decodes\r\n")


def nul_bytes() -> bytes:
    """NUL in a header value and in the body (RFC 5322 forbids both; C-string readers truncate)."""
    return _msg("nul", b"X-Nul: before\x00after\r\n", b"needle\x00\x00 after the nuls\r\n")


def bare_cr_lf() -> bytes:
    """Bare CR and bare LF inside headers and body: the raw material of SMTP smuggling."""
    return _msg("bare cr", b"X-Bare: one\rtwo\r\nX-Lf: three\nfour\r\n", b"needle\rbare cr\nbare lf\r\n")


def eight_bit_field_names() -> bytes:
    """8-bit and control bytes in field names (the DKIM library's format error once answered 451)."""
    return _msg("8-bit names", b"S\xc3\xbcbject: umlaut name\r\nX-\xff\xfe: binary name\r\nX-\x01ctl: control\r\n")


def obsolete_and_broken_fields() -> bytes:
    """`Subject : x` (obsolete WSP before the colon), a colon-less line, a continuation before any field."""
    return (b" continuation before any field\r\n" + HEAD + b"Subject : obsolete form\r\n"
            b"this line has no colon\r\nFrom\t: Alice <alice@else.test>\r\n\r\nneedle\r\n")


def long_header_line(size: int = 1 << 20) -> bytes:
    """One header line of 1 MiB: over SMTP's 1,000-octet line limit, and a memory test for every header reader."""
    return _msg("long header", b"X-Long: " + b"a" * size + b"\r\n")


def many_short_lines_header(count: int = 20000) -> bytes:
    """20,000 folded continuation lines in one field: quadratic unfolding shows up here."""
    return _msg("folded", b"X-Folded: start\r\n" + b" x\r\n" * count)


def smuggling() -> bytes:
    """End-of-data look-alikes (`LF.LF`, `CR.CR`, `LF.CRLF`) followed by commands: only CRLF.CRLF ends DATA."""
    return _msg("smuggle", body=b"needle\n.\nMAIL FROM:<evil@else.test>\r\nRCPT TO:<bob@example.test>\r\n"
                b"\r.\rDATA\r\n\n.\r\nQUIT\r\nstill the body\r\n")


def broken_mime() -> bytes:
    """A boundary that never closes, a part reusing its parent's boundary, base64 and quoted-printable garbage."""
    return _msg("broken mime", b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n",
                b"--zz\r\nContent-Type: multipart/alternative; boundary=\"zz\"\r\n\r\n--zz\r\n"
                b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64===\r\n--zz\r\n"
                b"Content-Type: text/html; charset=\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                b"<p>needle =ZZ=\r\n=4\r\n--zz\r\nContent-Type: image/png; name=../../etc/passwd\x00.png\r\n"
                b"Content-Disposition: attachment; filename*=utf-8''%ff%fe%00..%2f..%2fpasswd\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo\r\n")


def many_parts(count: int = 2000) -> bytes:
    """2,000 sibling parts: wide rather than deep (BODYSTRUCTURE size, attachment lists)."""
    parts = b"".join(f"--p\r\nContent-Type: text/plain; name=a{i}.txt\r\n\r\nneedle {i}\r\n".encode()
                     for i in range(count))
    return _msg("many parts", b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=p\r\n",
                parts + b"--p--\r\n")


def encoded_word_bomb(count: int = 5000) -> bytes:
    """5,000 encoded words in a Subject: decoders that re-scan the string per word go quadratic."""
    words = b"\r\n ".join(b"=?utf-8?B?bmVlZGxl?=" for _ in range(count))  # folded: within SMTP's line limit
    return HEAD + b"Subject: " + words + b"\r\n\r\nneedle\r\n"


def address_bombs() -> bytes:
    """Unbalanced comments, nested groups, route addresses, 3,000 recipients in one To."""
    to = b",\r\n ".join(f"r{i}@example.test".encode() for i in range(3000))
    return (b"From: ((((((((((((((((((((((( <alice@else.test>\r\nTo: " + to + b"\r\n"
            b"Cc: group: a@b.test, inner: c@d.test;;, \"unterminated <x@y.test>\r\n"
            b"Reply-To: <@route1,@route2:user@host.test>\r\nSender: \r\n"
            b"Date: Foo, 99 Bar 99999 99:99:99 +9999\r\nSubject: addresses\r\n\r\nneedle\r\n")


def invalid_utf8_headers() -> bytes:
    """Raw bytes that are no UTF-8 in Subject and From display names (SMTPUTF8-less 8-bit headers)."""
    return (b"From: \xc3\x28 Broken <bob@example.test>\r\nTo: bob@example.test\r\n"
            b"Subject: \xff\xfe\xfd invalid utf-8 \xed\xa0\x80 surrogate\r\n\r\nneedle\r\n")


def headers_only() -> bytes:
    """No blank line, no body."""
    return HEAD + b"Subject: headers only\r\n"


def empty_lines_only() -> bytes:
    """No header field at all: a blank line, then a body."""
    return b"\r\nneedle without headers\r\n"


BUILDERS: dict[str, Callable[[], bytes]] = {
    "deep_multipart": deep_multipart,
    "deep_rfc822": deep_rfc822,
    "unknown_charsets": unknown_charsets,
    "nul_bytes": nul_bytes,
    "bare_cr_lf": bare_cr_lf,
    "eight_bit_field_names": eight_bit_field_names,
    "obsolete_and_broken_fields": obsolete_and_broken_fields,
    "long_header_line": long_header_line,
    "many_short_lines_header": many_short_lines_header,
    "smuggling": smuggling,
    "broken_mime": broken_mime,
    "many_parts": many_parts,
    "encoded_word_bomb": encoded_word_bomb,
    "address_bombs": address_bombs,
    "invalid_utf8_headers": invalid_utf8_headers,
    "headers_only": headers_only,
    "empty_lines_only": empty_lines_only,
}

COMMITTED_MAX = 100_000  # larger messages are generated at test time, not committed


def corpus() -> dict[str, bytes]:
    return {name: build() for name, build in BUILDERS.items()}


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in corpus().items():
        if len(data) <= COMMITTED_MAX:
            p = folder / f"{name}.eml"
            p.write_bytes(data)
            out.append(p)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "hostile"
    for p in write(target):
        print(p)
