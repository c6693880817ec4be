"""The capabilities of issue 16's later IMAP extensions, in one place so the session's CAPABILITY list takes them
with one line: SORT/THREAD (RFC 5256, cmd_sort.py), ESORT (RFC 5267), SORT=DISPLAY (RFC 5957), BINARY (RFC 3516,
binary.py)."""

from __future__ import annotations

from courrier.access.imap import binary, cmd_sort


def capabilities(logged_in: bool) -> list[str]:
    """What is advertised beside IMAP4rev1's own list (RFC 3501 §7.2.1)."""
    return [*cmd_sort.CAPABILITIES, binary.CAPABILITY]
