"""Maildir++ folders of one account: IMAP mailbox names ↔ ``.Name`` directories (RFC 3501 §5.1, Maildir++).

The hierarchy delimiter is ``.`` (Maildir++ and Dovecot's default for it); names are kept in modified UTF-7 as the
client sends them (RFC 3501 §5.1.3), which is also how Dovecot names the directories, so both servers see the same
folders. ``INBOX`` is the account's Maildir itself.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from courrier.mailbox import maildir

DELIMITER = "."
MAX_NAME = 255
# RFC 6154 §2: attributes for the well-known folders, created at login like Dovecot's `auto = create`.
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk"}
_BAD = re.compile(r"[/\\\x00-\x1f\x7f*%]")


class FolderError(Exception):
    """A mailbox name that cannot be used, with the reason to send back."""


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
        raise FolderError(f"invalid mailbox name {name!r}")
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


def create(root: Path, name: str) -> Path:
    p = path_for(root, name)
    if is_inbox(normalize(name)):
        raise FolderError("INBOX already exists")
    if (p / "cur").is_dir():
        raise FolderError("mailbox already exists")
    maildir.ensure(p)
    (p / "maildirfolder").touch()  # Maildir++: marks a folder (Courier, Dovecot)
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
    if (dst / "cur").is_dir():
        raise FolderError("mailbox already exists")
    moved = [(src, dst)]
    prefix = src.name + DELIMITER
    for e in os.listdir(root):
        if e.startswith(prefix):
            moved.append((root / e, root / (dst.name + e[len(src.name):])))
    for a, b in moved:
        os.rename(a, b)
    return moved
