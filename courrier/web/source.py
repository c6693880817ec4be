"""``MessageSource``: what the API reads messages through, the same in both modes.

Capture mode: ``store.CaptureSource`` over the capture store. Server mode: ``mailview.MailboxView``, one selected
mailbox of the accounts' Maildirs. Both answer with the records of ``courrier/capture/records.py``; the API
modules call only these methods and serialise with ``api/mailpit.py``. ``tests/web/test_source.py`` checks that
both classes satisfy the protocol. Searches a source cannot run raise ``store.SearchError`` (the API answers 400).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from courrier.capture.envelope import CapturedEnvelope
    from courrier.capture.records import Message, Page, Summary


@runtime_checkable
class MessageSource(Protocol):
    # ------------------------------------------------------------------ reading
    async def page(self, query: str | None, start: int, limit: int, tz: str | None = None,
                   before: float | None = None) -> Page:
        """Newest first: every message (``query`` None) or a search's matches, in Mailpit's search syntax; with
        ``before`` (unix seconds) only those that arrived strictly earlier, compared to the millisecond."""
        ...

    async def resolve(self, msg_id: str) -> str | None:
        """The ID itself, or the newest message's for ``latest``; None when unknown."""
        ...

    async def message(self, msg_id: str) -> Message | None: ...

    async def summary(self, msg_id: str) -> Summary | None: ...

    async def parse_errors(self, ids: list[str]) -> dict[str, str]:
        """{ID: why it could be read only in part} for those of ``ids`` (the UI's error mark)."""
        ...

    async def raw(self, msg_id: str, trace: bool = False) -> bytes | None: ...

    async def headers(self, msg_id: str) -> dict[str, list[str]] | None: ...

    async def part(self, msg_id: str, part_id: str) -> tuple[str, str, bytes] | None:
        """(content type, file name, decoded content) of one leaf part."""
        ...

    async def envelope(self, msg_id: str) -> CapturedEnvelope | None: ...

    async def counts(self) -> tuple[int, int]:
        """(total, unread)."""
        ...

    async def tags(self) -> list[str]: ...

    async def tag_counts(self) -> dict[str, int]: ...

    def db_path(self) -> Path | None: ...

    # ------------------------------------------------------------------ changing
    async def set_read(self, ids: list[str] | None, read: bool, search: str | None = None,
                       tz: str | None = None) -> None: ...

    async def delete(self, ids: list[str] | None) -> None: ...

    async def delete_search(self, query: str, tz: str | None = None) -> None: ...

    async def add(self, raw: bytes, mail_from: str, rcpts: list[str], username: str = "") -> str: ...

    async def set_tags(self, ids: list[str], tags: list[str]) -> None: ...

    async def rename_tag(self, old: str, new: str) -> None: ...

    async def delete_tag(self, tag: str) -> None: ...
