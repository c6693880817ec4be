"""LIST/LSUB mailbox patterns (RFC 3501 §6.3.8): ``*`` matches any run of characters, ``%`` any run without the
hierarchy delimiter; INBOX matches in any case (§5.1). Matching time is linear in the name, whatever the pattern.

A regular expression built from the pattern (``^.*a.*a.*a.*a.*b$``) backtracks: ``*a*a*a*a*b`` against a
200-character name took 6.8 s and froze every listener of the process (issue 11 item 9). Here the pattern is an NFA
simulated bit-parallel (Shift-And, Baeza-Yates and Gonnet 1992): the set of pattern positions reached so far is one
integer, and each character of the name moves it with a few shifts and masks — never a step back. Runs of wildcards
are collapsed first (``**`` and ``%*`` are ``*``, ``%%`` is ``%``), so a wildcard is never followed by another and
the empty-match closure is one shift.
"""

from __future__ import annotations

from courrier.access.imap.parser import ParseError

MAX_PATTERN = 1024  # pattern positions after collapsing; a name is at most 255 characters (folders.MAX_NAME)


class Pattern:
    """A compiled reference + pattern; :meth:`match` tells whether a whole mailbox name matches."""

    def __init__(self, pattern: str, delimiter: str = ".") -> None:
        if pattern[:5].upper() == "INBOX":  # RFC 3501 §5.1: INBOX is case-insensitive (names carry it upper-case)
            pattern = "INBOX" + pattern[5:]
        toks: list[str] = []
        for c in pattern:
            if c in "*%" and toks and toks[-1] in "*%":
                if c == "*":
                    toks[-1] = "*"  # %* and ** are *; %% is %, *% is *
                continue
            toks.append(c)
        if len(toks) > MAX_PATTERN:
            raise ParseError("mailbox pattern too long")
        self.source = pattern
        self.delimiter = delimiter
        self.accept = 1 << len(toks)
        self.star = self.percent = 0
        self.literal: dict[str, int] = {}
        for i, c in enumerate(toks):
            bit = 1 << i
            if c == "*":
                self.star |= bit
            elif c == "%":
                self.percent |= bit
            else:
                self.literal[c] = self.literal.get(c, 0) | bit
        self.wild = self.star | self.percent
        self.start = self._closure(1)

    def _closure(self, d: int) -> int:
        """Adds the positions reached by letting a wildcard match nothing (one step: wildcards never follow one
        another after collapsing)."""
        return d | ((d & self.wild) << 1)

    def match(self, name: str) -> bool:
        d = self.start
        for c in name:
            step = ((d & self.literal.get(c, 0)) << 1) | (d & self.star)
            if c != self.delimiter:
                step |= d & self.percent
            d = self._closure(step)
            if not d:
                return False
        return bool(d & self.accept)
