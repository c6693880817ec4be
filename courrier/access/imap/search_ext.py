"""SEARCH keys of issue 16's later extensions, plugged into search.py's parser through ``KEYS``:
EMAILID and THREADID (RFC 8474 §6), SAVEDBEFORE, SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED (RFC 8514 §4.2).

A builder gets the parser (to read its arguments with ``next``) and returns a predicate over search.py's Context
(``c.msg`` is the fetch.Message); this module does not import search.py, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from courrier.access.imap import objectid as OI
from courrier.access.imap import savedate as SD
from courrier.access.imap.parser import ParseError, astring, date

Pred = Callable[[Any], bool]


def _objectid(p: Any, what: str) -> str:
    v = astring(p.next(what), what)
    if not OI.valid(v):
        raise ParseError(f"bad {what}")  # RFC 8474 §6: objectid syntax
    return v


def _emailid(p: Any) -> Pred:
    want = _objectid(p, "EMAILID")
    return lambda c: OI.email_id(c.msg.data) == want


def _threadid(p: Any) -> Pred:
    want = _objectid(p, "THREADID")
    return lambda c: OI.thread_id(c.msg.header, lambda: c.msg.data) == want


def _saved(op: str) -> Callable[[Any], Pred]:
    def build(p: Any) -> Pred:
        d = date(p.next("date"))
        if op == "BEFORE":
            return lambda c: SD.day(c.msg.msg) < d
        if op == "ON":
            return lambda c: SD.day(c.msg.msg) == d
        return lambda c: SD.day(c.msg.msg) >= d

    return build


KEYS: dict[str, Callable[[Any], Pred]] = {
    "EMAILID": _emailid, "THREADID": _threadid,  # RFC 8474 §6
    "SAVEDBEFORE": _saved("BEFORE"), "SAVEDON": _saved("ON"), "SAVEDSINCE": _saved("SINCE"),  # RFC 8514 §4.2
    "SAVEDATESUPPORTED": lambda p: (lambda c: True),  # RFC 8514 §4.2: every mailbox has save dates here
}
