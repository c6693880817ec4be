"""Maildir++ folders of one account: IMAP mailbox names (``mailbox/names.py``) ↔ ``.Name`` directories.

Names are kept in modified UTF-7 as the client sends them (RFC 3501 §5.1.3), which is also how Dovecot names the
directories, so both servers see the same folders. ``INBOX`` is the account's Maildir itself. Internal to the
Maildir store: callers outside ``courrier/mailbox`` use ``api.MailStore``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from courrier.mailbox import maildir
from courrier.mailbox.names import (  # noqa: F401  (the naming rules, re-exported for this package's users)
    DEFAULT_FOLDERS,
    DELIMITER,
    MAX_NAME,
    SPECIAL_USE,
    FolderError,
    decode_mutf7,
    encode_mutf7,
    is_inbox,
    normalize,
)

PROVISIONED = "courrier-folders"  # in the account's Maildir: the defaults were created and subscribed once
_BAD = re.compile(r"[/\\\x00-\x1f\x7f*%]")


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
