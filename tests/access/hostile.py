"""Hostile messages for the IMAP and MIME walker tests (issue 11 items 9-11), built in code so their shape is
exact: deep nesting, unknown charsets, many parts, broken transfer encodings. LF line endings, as stored."""

from __future__ import annotations


def deep(levels: int, word: bytes = b"deepword") -> bytes:
    """``levels`` multiparts nested one in another, a text part at the bottom."""
    out = [b"From: Mallory <mallory@evil.test>\nTo: bob@example.test\nSubject: deep\nMIME-Version: 1.0\n"]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i))
    out.append(b"Content-Type: text/plain\n\n" + word + b"\n")
    out += [b"--b%d--\n" % i for i in reversed(range(levels))]
    return b"".join(out)


def deep_messages(levels: int) -> bytes:
    """``levels`` message/rfc822 parts nested one in another."""
    out = b"Subject: innermost\n\nbottom\n"
    for i in range(levels):
        out = b"Subject: level %d\nContent-Type: message/rfc822\n\n" % i + out
    return b"From: m@evil.test\n" + out


def unknown_charset(word: bytes = b"caf\xe9 charsetword") -> bytes:
    return (b"From: Mallory <mallory@evil.test>\nSubject: =?x-klingon?q?tlhIngan?=\nMIME-Version: 1.0\n"
            b"Content-Type: text/plain; charset=x-klingon\nContent-Transfer-Encoding: 8bit\n\n" + word + b"\n")


def non_text_codec_charset() -> bytes:
    """A charset naming a codec that is no text encoding: bytes.decode raises LookupError for it."""
    return (b"From: m@evil.test\nSubject: hex\nContent-Type: text/plain; charset=hex\n\nhexcharsetword\n")


def broken_base64() -> bytes:
    return (b"From: m@evil.test\nSubject: b64\nContent-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: base64\n\nY2Fm!!!w6kgYjY0d29yZA\n=\n")


def many_parts(n: int) -> bytes:
    body = b"".join(b"--p\n\npart %d\n" % i for i in range(n))
    return b'From: m@evil.test\nSubject: many\nContent-Type: multipart/mixed; boundary="p"\n\n' + body + b"--p--\n"


def plain(subject: str, body: str) -> bytes:
    return f"From: Alice <alice@else.test>\nTo: bob@example.test\nSubject: {subject}\n\n{body}\n".encode()
