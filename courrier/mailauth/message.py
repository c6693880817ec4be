"""Just enough message parsing for authentication: the header section, its fields, and the From domain(s).

Works on raw bytes with CRLF (as received) or LF (as stored) line endings; never decodes the body. Bounded: the header
section is looked for within the first ``MAX_HEAD`` octets (a longer one is treated as all there is).
"""

from __future__ import annotations

import email.utils
import re

from courrier.mail.headers import read_header

MAX_HEAD = 1 << 20

_BLANK = re.compile(rb"\r?\n\r?\n")


def split_head(message: bytes) -> tuple[bytes, int]:
    """(header section, offset of the body) — the body starts after the first empty line (RFC 5322 §2.1)."""
    m = _BLANK.search(message, 0, MAX_HEAD)
    if m is None:
        return message[:MAX_HEAD], min(len(message), MAX_HEAD)
    return message[:m.start()], m.end()


def fields(head: bytes) -> list[tuple[str, bytes]]:
    """[(lowercased name, raw value with folding kept)] in order (RFC 5322 §2.2, §2.2.3).

    Every line that does not continue a field (leading SP/HTAB) starts one, even a malformed line without a colon
    (its name is ""): the indexes then match what local delivery counts when it drops fields.
    """
    out: list[tuple[str, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + b"\n" + line)
        else:
            name, colon, value = line.partition(b":")
            out.append((name.strip().decode("ascii", "replace").lower() if colon else "", value))
    return out


def unfold(value: bytes) -> str:
    return re.sub(r"\r?\n[ \t]", " ", value.decode("utf-8", "replace")).strip()


def addresses(head: bytes, name: str) -> list[str]:
    """The addr-specs of every ``name`` field (e.g. "from", "sender"), lowercased domains kept as written.

    The fields are the program's one header reader's (``courrier.mail.headers``): DMARC judges the From that
    submission checked and IMAP shows, an obsolete ``From :`` included (RFC 5322 §4.5)."""
    values = [f.text() for f in read_header(head + b"\r\n\r\n", max_size=MAX_HEAD + 4).get_all(name)]
    return [a for _, a in email.utils.getaddresses(values) if a]


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").rstrip(".").lower() if "@" in address else ""


def from_domains(head: bytes) -> list[str]:
    """The distinct domains of the header From (RFC 7489 §6.6.1 wants exactly one)."""
    out: list[str] = []
    for a in addresses(head, "from"):
        d = domain_of(a)
        if d and d not in out:
            out.append(d)
    return out
