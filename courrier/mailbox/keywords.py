"""IMAP keywords in Maildir file names, the way Dovecot keeps them: a ``dovecot-keywords`` file in the Maildir maps
the letters ``a``–``z`` of the ``:2,`` info part to keyword names, one ``<index> <name>`` line each (index 0 is
``a``). Dovecot (maildir-keywords.c) and mutt reading the same Maildir see the keywords courrier stores, and courrier
sees theirs. Keywords beyond the 26 letters live in the index only.

Blocking file work: called by the index under its folder lock.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

FILE = "dovecot-keywords"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _parse(text: str) -> list[str | None]:
    names: list[str | None] = [None] * len(LETTERS)
    for line in text.splitlines():
        idx, sep, name = line.partition(" ")
        if sep and idx.isdigit() and int(idx) < len(LETTERS) and name:
            names[int(idx)] = name
    return names


class Keywords:
    """One Maildir's letter ↔ keyword map, re-read when the file changes (another program may add a keyword)."""

    def __init__(self, maildir: Path) -> None:
        self.path = maildir / FILE
        self.names: list[str | None] = [None] * len(LETTERS)
        self._stamp: tuple[int, int] | None = None

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            self.names, self._stamp = [None] * len(LETTERS), None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self.names = _parse(self.path.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                return
            self._stamp = stamp

    def from_letters(self, info: str) -> set[str]:
        """The keywords named by the lower-case letters of an info part (letters without a name are ignored)."""
        if not any(c.islower() for c in info):
            return set()
        self._refresh()
        out = set()
        for c in info:
            i = LETTERS.find(c)
            if i >= 0 and self.names[i]:
                out.add(self.names[i])  # type: ignore[arg-type]
        return out

    def known_letters(self) -> str:
        """Letters that name a keyword: the others found in a file name are foreign and kept as they are."""
        self._refresh()
        return "".join(LETTERS[i] for i, n in enumerate(self.names) if n)

    def letters_for(self, keywords: set[str] | frozenset[str]) -> str:
        """The letters of ``keywords``, assigning free letters (and writing the file) to keywords that have none."""
        if not keywords:
            return ""
        self._refresh()
        lower = {n.lower(): i for i, n in enumerate(self.names) if n}
        out = []
        added = False
        for kw in sorted(keywords):
            i = lower.get(kw.lower())
            if i is None:
                try:
                    i = self.names.index(None)
                except ValueError:
                    continue  # all 26 letters taken: the keyword stays in the index only
                self.names[i] = kw
                lower[kw.lower()] = i
                added = True
            out.append(LETTERS[i])
        if added:
            self._save()
        return "".join(sorted(out))

    def _save(self) -> None:
        text = "".join(f"{i} {n}\n" for i, n in enumerate(self.names) if n)
        tmp = self.path.parent / "tmp" / f"{FILE}.{os.getpid()}.{threading.get_ident()}"  # never a ".name" (a folder)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, self.path)  # readers see the old map or the new one, never half of it
            st = os.stat(self.path)
            self._stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
