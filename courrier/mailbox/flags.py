"""Message flags: IMAP system flags (RFC 3501 §2.3.2) ↔ the Maildir ``:2,`` info letters.

The letters are the ones Dovecot and mutt use (https://cr.yp.to/proto/maildir.html): D draft, F flagged, P passed,
R replied, S seen, T trashed. Keywords get the lower-case letters a–z through the Maildir's ``dovecot-keywords`` file
(courrier/mailbox/keywords.py), as Dovecot keeps them; a lower-case letter that file does not name is foreign and kept
as it is when we rename the file.
"""

from __future__ import annotations

SEEN, ANSWERED, FLAGGED, DELETED, DRAFT, RECENT = "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"
FORWARDED = "$Forwarded"

LETTER_TO_FLAG = {"D": DRAFT, "F": FLAGGED, "P": FORWARDED, "R": ANSWERED, "S": SEEN, "T": DELETED}
FLAG_TO_LETTER = {v.lower(): k for k, v in LETTER_TO_FLAG.items()}
SYSTEM = (ANSWERED, FLAGGED, DELETED, SEEN, DRAFT)
_CANON = {f.lower(): f for f in (*SYSTEM, RECENT, FORWARDED)}


def canonical(flag: str) -> str:
    """System flags are case-insensitive (RFC 3501 §2.3.2): one spelling for each."""
    return _CANON.get(flag.lower(), flag)


def split_name(name: str) -> tuple[str, str]:
    """``base:2,FS`` → (base, "FS"); a name without info → (name, "")."""
    base, sep, info = name.partition(":")
    if sep and info.startswith("2,"):
        return base, info[2:]
    return base, ""


def from_info(info: str) -> set[str]:
    return {LETTER_TO_FLAG[c] for c in info if c in LETTER_TO_FLAG}


def is_keyword(flag: str) -> bool:
    """A keyword (RFC 3501 §2.3.2) that needs a ``dovecot-keywords`` letter: not a system flag, not ``$Forwarded``
    (which has the Maildir letter P)."""
    return not flag.startswith("\\") and flag.lower() != FORWARDED.lower()


def to_info(flags: set[str] | frozenset[str], old_info: str = "", keyword_letters: str = "", known: str = "") -> str:
    """The info letters for ``flags`` (ASCII order, as the Maildir spec asks): the system letters, the keywords'
    letters (``keyword_letters``), and the lower-case letters of ``old_info`` that are not keyword letters we know
    (``known``: they belong to another program)."""
    letters = {FLAG_TO_LETTER[f.lower()] for f in flags if f.lower() in FLAG_TO_LETTER}
    letters |= set(keyword_letters)
    letters |= {c for c in old_info if c.islower() and c not in known}
    return "".join(sorted(letters))
