"""Maildir++ folders of one account: IMAP mailbox names ↔ ``.Name`` directories (RFC 3501 §5.1, Maildir++).

The hierarchy delimiter is ``.`` (Maildir++ and Dovecot's default for it); names are kept in modified UTF-7 as the
client sends them (RFC 3501 §5.1.3), which is also how Dovecot names the directories, so both servers see the same
folders. ``INBOX`` is the account's Maildir itself.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from courrier.mailbox import maildir

DELIMITER = "."
MAX_NAME = 255
# RFC 6154 §2: attributes for the well-known folders, created at login like Dovecot's `auto = create`.
SPECIAL_USE = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Junk": "\\Junk", "Trash": "\\Trash", "Archive": "\\Archive"}
DEFAULT_FOLDERS = tuple(SPECIAL_USE)  # what every account gets besides INBOX, all subscribed (issue 11 item 14)
PROVISIONED = "courrier-folders"  # in the account's Maildir: the defaults were created and subscribed once
_BAD = re.compile(r"[/\\\x00-\x1f\x7f*%]")


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


def path_for(root: Path, name: str) -> Path:
    """The Maildir of mailbox ``name`` under the account ``root``; FolderError for unsafe or invalid names."""
    name = normalize(name)
    if is_inbox(name):
        return root
    if name.startswith("INBOX."):  # Dovecot-style clients may name children of INBOX
        name = name[6:]
    parts = name.split(DELIMITER)
    if (not name or len(name) > MAX_NAME or _BAD.search(name) or any(p in ("", "..") for p in parts)
            or name.startswith("~")):
        raise FolderError(f"invalid mailbox name {name[:60]!r}")
    decode_mutf7(name)  # names are kept as the client sends them, so they must be valid modified UTF-7
    return root / f".{name}"


def exists(root: Path, name: str) -> bool:
    try:
        p = path_for(root, name)
    except FolderError:
        return False
    return (p / "cur").is_dir()


def list_names(root: Path) -> list[str]:
    """Every mailbox of the account, INBOX first."""
    out = ["INBOX"]
    try:
        entries = sorted(os.listdir(root))
    except FileNotFoundError:
        return out
    for e in entries:
        if e.startswith(".") and e not in (".", "..") and (root / e / "cur").is_dir():
            out.append(e[1:])
    return out


def _make(p: Path) -> None:
    maildir.ensure(p)
    (p / "maildirfolder").touch()  # Maildir++: marks a folder (Courier, Dovecot)


def _make_parents(root: Path, name: str) -> None:
    """RFC 3501 §6.3.3 (and §6.3.5): superior names that a new name needs are created too (SHOULD)."""
    parts = normalize(name).removeprefix("INBOX.").split(DELIMITER)
    for k in range(1, len(parts)):
        parent = path_for(root, DELIMITER.join(parts[:k]))
        if not (parent / "cur").is_dir():
            _make(parent)


def create(root: Path, name: str) -> Path:
    p = path_for(root, name)
    if is_inbox(normalize(name)):
        raise FolderError("INBOX already exists")
    if (p / "cur").is_dir():
        raise FolderError("mailbox already exists")
    _make_parents(root, name)
    _make(p)
    return p


def delete(root: Path, name: str) -> Path:
    if is_inbox(name):
        raise FolderError("INBOX cannot be deleted")  # RFC 3501 §6.3.4
    p = path_for(root, name)
    if not (p / "cur").is_dir():
        raise FolderError("no such mailbox")
    shutil.rmtree(p)
    return p


def rename(root: Path, old: str, new: str) -> list[tuple[Path, Path]]:
    """Renames a folder and its children (RFC 3501 §6.3.5); returns the (old, new) Maildir paths moved."""
    src, dst = path_for(root, old), path_for(root, new)
    if not (src / "cur").is_dir():
        raise FolderError("no such mailbox")
    if dst == src or dst.name.startswith(src.name + DELIMITER):
        # RFC 3501 §6.3.5: a mailbox cannot become its own inferior (its children would move into themselves)
        raise FolderError("cannot rename a mailbox into itself or its own child")
    if (dst / "cur").is_dir():
        raise FolderError("mailbox already exists")
    moved = [(src, dst)]
    prefix = src.name + DELIMITER
    for e in os.listdir(root):
        if e.startswith(prefix):
            moved.append((root / e, root / (dst.name + e[len(src.name):])))
    _make_parents(root, new)
    for a, b in moved:
        os.rename(a, b)
    return moved


def provision(root: Path, subscribe: Callable[[list[str]], None]) -> bool:
    """Gives an account INBOX and the default folders (Maildir++ ``.Drafts`` … as Dovecot lays them out), and
    subscribes them all, so clients that show subscribed folders only (RFC 3501 §6.3.9 LSUB) show them.

    Done once per account — at ``user add``, or at the first login of an account made before — and recorded by the
    PROVISIONED file, so a folder the user later unsubscribes stays unsubscribed. Returns whether it ran."""
    maildir.ensure(root)
    marker = root / PROVISIONED
    if marker.exists():
        return False
    for name in DEFAULT_FOLDERS:
        if not exists(root, name):
            create(root, name)
    subscribe(["INBOX", *DEFAULT_FOLDERS])
    marker.write_text("default folders created and subscribed; delete this file to have them again\n")
    return True
