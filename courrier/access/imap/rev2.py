"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: CAPABILITY lists both; ``ENABLE IMAP4rev2`` (RFC 9051 §6.3.1) switches the
session to rev2's behaviour where it differs from rev1 (RFC 9051 Appendix E):

- no ``\\Recent`` flag and no ``RECENT`` response (E.1 item 10): SELECT and new mail send EXISTS only;
- SELECT/EXAMINE send no ``[UNSEEN n]`` (E.1 item 11), and ``[CLOSED]`` when they close a mailbox (§7.1);
- SEARCH answers in ESEARCH form, ``RETURN ()`` being ALL (§6.4.4, E.1 item 5);
- mailbox names in UTF-8 (§5.1, utf8.py);
- what rev2 makes part of the base — LIST-EXTENDED and its return options, LIST-STATUS, STATUS SIZE and DELETED,
  BINARY, ESEARCH, NAMESPACE, UIDPLUS, MOVE, UNSELECT, ENABLE, IDLE, LITERAL-, SPECIAL-USE, SASL-IR — is offered in
  both modes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courrier.access.imap.session import Session

CAPABILITY = "IMAP4rev2"


def on(s: Session) -> bool:
    return CAPABILITY in s.enabled


def enabled(s: Session) -> None:
    """What changes at once when ENABLE IMAP4rev2 runs in the selected state: \\Recent is no longer shown."""
    if s.selected is not None:
        s.selected.recent.clear()
