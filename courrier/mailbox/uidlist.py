"""``courrier-uidlist``: the Maildir-side record of UIDs and mod-sequences, so a rebuilt index keeps them.

The SQLite index is a cache of what the Maildir holds plus what only IMAP knows: UIDs, UIDVALIDITY and
mod-sequences (RFC 3501 §2.3.1.1, RFC 7162 §3.1.1). Like Dovecot's ``dovecot-uidlist``, this file keeps those beside
the messages, so an index rebuilt from the Maildir (a lost or deleted ``courrier.db``) gives every message its old UID
and UIDVALIDITY does not change: clients keep their caches. Only a folder without a usable record (or one whose
record names another folder: it was renamed) gets a new UIDVALIDITY.

Format, one record per line, appended as the index changes and rewritten whole when it has grown to twice its
content (written to ``tmp/`` and renamed, so a reader sees the old file or the new one)::

    C1 V<uidvalidity> N<uidnext> M<highestmodseq> F<vanished floor> :<folder key>   first line
    <uid> <modseq> <info> :<base>     the message <base> has UID <uid>, changed last at <modseq>, its file's
                                      ":2," info was <info> ("-" when empty); a later line for a UID replaces it
    -<uid> <modseq>                   the UID was expunged at <modseq> (RFC 7162 §3.2.5.2 expunge records)

Lines are not fsync'ed one by one (the index commits first): a crash loses at most the last changes, and a message
whose line is missing gets a new UID (its old one is never reused: N and every line seen count for uidnext).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

FILE = "courrier-uidlist"
VERSION = "C1"


@dataclass
class Record:
    key: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    floor: int  # expunges at or below this mod-sequence are not in ``vanished``
    msgs: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # base → (uid, modseq, info)
    vanished: dict[int, int] = field(default_factory=dict)  # uid → modseq of its expunge
    lines: int = 0


def msg_line(uid: int, modseq: int, info: str, base: str) -> str:
    return f"{uid} {modseq} {info or '-'} :{base}\n"


def gone_line(uid: int, modseq: int) -> str:
    return f"-{uid} {modseq}\n"


def read(maildir: Path) -> Record | None:
    """The folder's record; None when there is none or its first line cannot be read."""
    try:
        with open(maildir / FILE, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    lines = text.split("\n")
    head, _, key = lines[0].partition(" :")
    words = head.split()
    if not words or words[0] != VERSION:
        return None
    vals = {w[0]: w[1:] for w in words[1:] if w[:1] in "VNMF"}
    try:
        rec = Record(key, int(vals["V"]), int(vals["N"]), int(vals.get("M", 0)), int(vals.get("F", 0)))
    except (KeyError, ValueError):
        return None
    by_uid: dict[int, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        rec.lines += 1
        try:
            if line.startswith("-"):
                uid_s, mod_s = line[1:].split(" ", 1)
                uid, mod = int(uid_s), int(mod_s)
                rec.vanished[uid] = mod
                base = by_uid.pop(uid, None)
                if base is not None:
                    rec.msgs.pop(base, None)
            else:
                meta, _, base = line.partition(" :")
                uid_s, mod_s, info = meta.split(" ")
                uid, mod = int(uid_s), int(mod_s)
                if not base or uid in rec.vanished:
                    continue
                old = by_uid.get(uid)
                if old is not None and old != base:
                    rec.msgs.pop(old, None)
                prev = rec.msgs.get(base)
                if prev is not None and prev[0] != uid:  # the same file under two UIDs: the first one holds
                    continue
                rec.msgs[base] = (uid, mod, "" if info == "-" else info)
                by_uid[uid] = base
        except ValueError:
            continue  # a torn last line (crash while appending): ignored
        rec.uidnext = max(rec.uidnext, uid + 1)
        rec.highestmodseq = max(rec.highestmodseq, mod)
    return rec


def head(maildir: Path) -> tuple[str, int, int] | None:
    """(folder key, UIDVALIDITY, record lines) of the folder's file, without parsing the records."""
    try:
        with open(maildir / FILE, "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    first, _, rest = data.partition(b"\n")
    text, _, key = first.decode("utf-8", "surrogateescape").partition(" :")
    words = text.split()
    if not words or words[0] != VERSION:
        return None
    try:
        uidvalidity = next(int(w[1:]) for w in words[1:] if w.startswith("V"))
    except (StopIteration, ValueError):
        return None
    return key, uidvalidity, rest.count(b"\n")


def append(maildir: Path, lines: Iterable[str]) -> bool:
    """Adds records at the end (O_APPEND: one write, so concurrent appenders never interleave inside a line);
    False when there is no file to add to (the caller writes it whole)."""
    data = "".join(lines).encode("utf-8", "surrogateescape")
    try:
        fd = os.open(maildir / FILE, os.O_WRONLY | os.O_APPEND)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        os.write(fd, data)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def rewrite(maildir: Path, key: str, uidvalidity: int, uidnext: int, highestmodseq: int, floor: int,
            msgs: Iterable[tuple[int, int, str, str]], vanished: Iterable[tuple[int, int]]) -> int:
    """Writes the whole record ((uid, modseq, info, base) per message, (uid, modseq) per expunge); its line count."""
    if not (maildir / "cur").is_dir():
        return 0
    out = [f"{VERSION} V{uidvalidity} N{uidnext} M{highestmodseq} F{floor} :{key}\n"]
    out += [gone_line(u, m) for u, m in vanished]
    out += [msg_line(u, m, i, b) for u, m, i, b in msgs]
    tmp = maildir / "tmp" / f"{FILE}.{os.getpid()}.{threading.get_ident()}"
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("".join(out))
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, maildir / FILE)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return 0
    return len(out) - 1
