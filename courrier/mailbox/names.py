"""Mailbox names as IMAP clients see them (RFC 3501 §5.1): the hierarchy delimiter, INBOX, modified UTF-7 and the
special-use folders every account gets. Part of the store's interface (``mailbox/api.py``): IMAP, the web
inspector and delivery name folders this way whatever the store keeps them in.

The delimiter is ``.`` (Maildir++ and Dovecot's default for it); names are kept in modified UTF-7 as the client sends
them (RFC 3501 §5.1.3). ``INBOX`` is case-insensitive.
"""

from __future__ import annotations

import base64
import binascii
import re

DELIMITER = "."
MAX_NAME = 255
# RFC 6154 §2: attributes for the well-known folders, created at login like Dovecot's `auto = create`.
SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Junk": "\\Junk", "Trash": "\\Trash", "Archive": "\\Archive"}
DEFAULT_FOLDERS = tuple(SPECIAL_USE)  # what every account gets besides INBOX, all subscribed (issue 11 item 14)


class FolderError(Exception):
    """A mailbox name that cannot be used, with the reason to send back."""


def decode_mutf7(name: str) -> str:
    """RFC 3501 §5.1.3 modified UTF-7 → text; FolderError for a name that is not valid modified UTF-7.

    Printable ASCII stands for itself (``&`` is written ``&-``); other characters are UTF-16 in modified BASE64
    (``,`` for ``/``, no padding) between ``&`` and ``-``. A shifted run may not encode printable ASCII, nor follow
    another one directly, and its bits must end on a UTF-16 unit with zero padding — what Dovecot also checks.
    """
    out: list[str] = []
    i, n = 0, len(name)
    last_shift_end = -1
    while i < n:
        c = name[i]
        if not " " <= c <= "~":
            raise FolderError("mailbox name is not 7-bit: use modified UTF-7 (RFC 3501 §5.1.3)")
        if c != "&":
            out.append(c)
            i += 1
            continue
        j = name.find("-", i + 1)
        if j < 0:
            raise FolderError("mailbox name has an unterminated & sequence (RFC 3501 §5.1.3)")
        run = name[i + 1:j]
        if not run:
            out.append("&")
        else:
            if i == last_shift_end or not re.fullmatch(r"[A-Za-z0-9+,]+", run):
                raise FolderError("mailbox name is not valid modified UTF-7 (RFC 3501 §5.1.3)")
            bits = len(run) * 6
            try:
                raw = base64.b64decode(run.replace(",", "/") + "=" * (-len(run) % 4), validate=True)
                if len(raw) % 2 or bits - len(raw) * 8 >= 6 or base64.b64encode(raw).decode().rstrip("=") != \
                        run.replace(",", "/"):
                    raise ValueError
                text = raw.decode("utf-16-be")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise FolderError("mailbox name is not valid modified UTF-7 (RFC 3501 §5.1.3)") from None
            if any(" " <= ch <= "~" for ch in text):
                raise FolderError("mailbox name encodes printable ASCII in modified UTF-7 (RFC 3501 §5.1.3)")
            out.append(text)
            last_shift_end = j + 1
        i = j + 1
    return "".join(out)


def encode_mutf7(text: str) -> str:
    """Text → RFC 3501 §5.1.3 modified UTF-7 (what a client sends for a non-ASCII mailbox name)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            run.clear()

    for ch in text:
        if " " <= ch <= "~":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"  # RFC 3501 §5.1: INBOX is case-insensitive


def normalize(name: str) -> str:
    return "INBOX" + name[5:] if name[:6].upper() == "INBOX." else ("INBOX" if is_inbox(name) else name)
