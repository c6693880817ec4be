"""``courrier backup DIR``: a consistent copy of ``data_dir`` taken while the server runs; ``courrier serve --data
DIR`` starts on it.

"Consistent" means: everything acknowledged (250, APPEND OK, queued) before the backup started is in it. The order
of the steps is what gives that, without stopping anything:

1. **The database** through SQLite's online backup API (one read transaction: accounts, mailbox index, queue rows,
   delivery log and capture index as of one instant).
2. **The queue spool** (``queue/msg``, ``queue/incoming``), hard-linked. A message queued at step 1 either still
   has its file here, or was delivered meanwhile — locally into a Maildir that step 3 copies after, or to a remote
   server. On restore a row without a file is dropped and a file without a row is adopted (queue/runner.py), so the
   copy at worst sends a message again (at-least-once, as RFC 5321 §6.1 allows), never loses one.
3. **The mail** (``mail/``, ``capture/``), hard-linked message by message. Maildir files are never modified in
   place (a flag change is a rename), so a hard link is a snapshot of the message; a file renamed between listing
   and linking is found again under its new name. ``tmp/`` (messages not yet acknowledged) is left out.
4. **Keys and certificates** (``dkim/``, ``tls/``) and the small per-folder files, copied.

Hard links make it fast and cost no space, and need DIR on the same file system as ``data_dir``; on another one every
file is copied instead (said in the summary). A backup on the same disk is not a backup yet: copy DIR elsewhere
(``rsync -aH``, ``tar``) — it is a quiet, consistent tree, so any tool will do.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from courrier.mailbox import flags as F

SKIP_TOP = {"spool-tmp", "status.json", "courrier.db", "courrier.db-wal", "courrier.db-shm", "courrier.db-journal"}
MAIL_DIRS = ("mail", "capture")
KEY_DIRS = ("dkim", "tls")


class BackupError(Exception):
    """A backup that cannot be made (DIR not empty, no database…): one line."""


@dataclass
class Summary:
    messages: int = 0
    queued: int = 0
    copied_files: int = 0
    linked: bool = True


class _Copier:
    def __init__(self, summary: Summary) -> None:
        self.s = summary

    def link(self, src: Path, dst: Path) -> bool:
        """Hard link (copy across file systems); False when ``src`` is gone."""
        if self.s.linked:
            try:
                os.link(src, dst, follow_symlinks=False)
                return True
            except FileNotFoundError:
                return False
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                self.s.linked = False
        return self.copy(src, dst)

    def copy(self, src: Path, dst: Path) -> bool:
        try:
            shutil.copy2(src, dst, follow_symlinks=False)
        except FileNotFoundError:
            return False
        self.s.copied_files += 1
        return True


def _backup_db(src: Path, dst: Path) -> None:
    source = sqlite3.connect(src, timeout=30)
    try:
        target = sqlite3.connect(dst)
        try:
            source.backup(target)  # pages=-1: the whole database in one step, i.e. one consistent read
        finally:
            target.close()
    finally:
        source.close()
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir(p: Path) -> None:
    p.mkdir(mode=0o700, exist_ok=True)


def _link_message(c: _Copier, folder: Path, sub: str, name: str, dst_folder: Path) -> bool:
    """Links one message; when a flag change renamed it meanwhile (same base name, other ``:2,`` info, maybe moved
    from new/ to cur/), links it under its new name."""
    if c.link(folder / sub / name, dst_folder / sub / name):
        return True
    base = F.split_name(name)[0]
    for _ in range(3):
        for s in ("cur", "new"):
            try:
                names = os.listdir(folder / s)
            except FileNotFoundError:
                continue
            for n in names:
                if F.split_name(n)[0] == base and c.link(folder / s / n, dst_folder / s / n):
                    return True
    return False  # expunged meanwhile


def _copy_mail_tree(c: _Copier, src: Path, dst: Path) -> None:
    _mkdir(dst)
    for top, dirs, files in os.walk(src):
        rel = Path(top).relative_to(src)
        here = dst / rel
        maildir_tmp = [d for d in dirs if d == "tmp" and (Path(top) / "cur").is_dir()]
        dirs[:] = [d for d in dirs if d not in maildir_tmp]  # tmp/: messages not acknowledged yet, left out
        for d in dirs + maildir_tmp:
            _mkdir(here / d)
        if rel.name in ("cur", "new") and (Path(top).parent / "tmp").is_dir():
            for name in files:
                if not name.startswith(".") and _link_message(c, Path(top).parent, rel.name, name, here.parent):
                    c.s.messages += 1
        else:
            for name in files:  # uidvalidity, maildirfolder, subscriptions: small, may be rewritten in place
                c.copy(Path(top) / name, here / name)


def backup(data_dir: Path, dest: Path) -> Summary:
    """Copies ``data_dir`` into ``dest`` (absent or empty) while the server may be running."""
    db = data_dir / "courrier.db"
    if not db.is_file():
        raise BackupError(f"no database in {data_dir}: nothing to back up")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} is not empty (give a new or empty directory)")
    if dest.resolve() == data_dir.resolve() or data_dir.resolve() in dest.resolve().parents:
        raise BackupError(f"{dest} is inside data_dir {data_dir}")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    s = Summary()
    c = _Copier(s)
    _backup_db(db, dest / "courrier.db")  # 1. the database, as of one instant
    queue = data_dir / "queue"  # 2. the spool: after the database (see the module docstring)
    if queue.is_dir():
        _mkdir(dest / "queue")
        for sub in ("msg", "incoming", "corrupt"):
            if not (queue / sub).is_dir():
                continue
            _mkdir(dest / "queue" / sub)
            for name in sorted(os.listdir(queue / sub)):
                if not name.startswith(".") and c.link(queue / sub / name, dest / "queue" / sub / name):
                    s.queued += sub != "corrupt"
    for name in MAIL_DIRS:  # 3. the mail
        if (data_dir / name).is_dir():
            _copy_mail_tree(c, data_dir / name, dest / name)
    for name in sorted(os.listdir(data_dir)):  # 4. keys, certificates and anything else small
        src = data_dir / name
        if name in SKIP_TOP or name in MAIL_DIRS or name == "queue" or src.is_symlink():
            continue
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, dirs_exist_ok=True)
        elif src.is_file():
            c.copy(src, dest / name)
    os.sync()  # the copies, the new directory entries and links: on disk before we say "done"
    return s
