"""SAVEDATE (RFC 8514): when a message was saved into its mailbox — FETCH SAVEDATE and the SEARCH keys SAVEDBEFORE,
SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED.

The store names every file it writes (delivery, APPEND, and each COPY and MOVE, which get a new name) with a
Maildir unique name starting ``<seconds>.M<microseconds>`` (mailbox/maildir.py), the moment the message was saved
there — Dovecot's names have the same form. That time is the save date (§3: it changes on COPY and MOVE, not on flag
changes). A file named otherwise (put there by another program) has its internal date as save date, which RFC 8514
§3 allows ("the server MAY use the internal date" when it does not know better), so every mailbox supports it.
"""

from __future__ import annotations

import datetime
import re

from courrier.mailbox.api import Msg

CAPABILITY = "SAVEDATE"
_NAME = re.compile(r"^(\d{9,11})(?:\.M(\d{1,6}))?")


def of(m: Msg) -> float:
    """The message's save date, epoch seconds."""
    g = _NAME.match(m.base)
    if g is None:
        return m.internaldate
    return int(g.group(1)) + (int(g.group(2)) / 1e6 if g.group(2) else 0.0)


def day(m: Msg) -> datetime.date:
    """RFC 8514 §4.2: SAVEDBEFORE/SAVEDON/SAVEDSINCE compare days, as BEFORE/ON/SINCE do (RFC 3501 §6.4.4)."""
    return datetime.datetime.fromtimestamp(of(m), datetime.UTC).date()
