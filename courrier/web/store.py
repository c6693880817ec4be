"""The web layer's view of captured mail: ``CaptureSource``, a thin async adapter over ``CaptureStore``.

It is the capture mode's ``source.MessageSource``. The capture store (``courrier.capture.store``) is the one door
to captured mail and answers with typed records (``capture/records.py``). Its methods block (SQLite, files), so every call here runs in a worker thread. What the API needs
and the store does not offer is adapted here, not added there:

- ``latest`` as a message ID;
- the ``tz`` parameter of searches (date-only ``before:``/``after:`` read in that time zone);
- tag editing (``PUT /api/v1/tags``, rename, delete) and per-tag counts, through the store's queries
  (``capture/api.py``: ``CaptureQueries``). In the local store such edits live in the index only: a full re-index
  restores the tags recorded in each file's envelope;
- the mailbox totals (total, unread) kept from the store's own ``stats`` events instead of counted again for every
  page: counting unread messages reads the whole table (~100 ms at 100,000 messages), and a page of the list is
  asked for far more often than mail changes;
- a capture mailbox (``within``, for ``?mailbox=``): the same source restricted to the messages of one envelope
  recipient or SMTP AUTH user (``queries.mailbox_where``), for lists, searches, ``latest``, bulk changes and counts.

Every SQL condition comes from the store's ``queries`` (its own dialect: SQLite locally, PostgreSQL in a cluster),
so this facade serves both capture stores (``capture/api.py``: ``CaptureBackend``).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from courrier.capture.records import Message, Page, Summary
from courrier.capture.search import has_auth_term, ms, parse_datetime

if TYPE_CHECKING:
    from courrier.capture.api import CaptureBackend
    from courrier.capture.envelope import CapturedEnvelope
    from courrier.web.verdicts import AuthChecks

T = TypeVar("T")
_DATE_TERM = re.compile(r"(?<!\S)([-!]?(?:before|after):)(\S+)", re.I)


class SearchError(ValueError):
    """A search the store cannot run (bad date, size or time zone): the API answers 400 with this text."""


def apply_tz(query: str, tz: str | None) -> str:
    """Date-only ``before:``/``after:`` terms made explicit in the time zone ``tz`` (Mailpit's ``tz`` parameter)."""
    if not tz:
        return query
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        raise SearchError(f"unknown time zone {tz[:60]!r}") from None

    def sub(m: re.Match[str]) -> str:
        try:  # a date without an offset, in any form ``parse_datetime`` reads, is a time in ``zone``
            return m.group(1) + parse_datetime(m.group(2), zone).isoformat()
        except ValueError:
            return m.group(0)  # searched as text, as the store does with a date it cannot read

    return _DATE_TERM.sub(sub, query)


class CaptureSource:
    """Async facade over a blocking CaptureStore: the capture mode's ``source.MessageSource``."""

    def __init__(self, store: CaptureBackend) -> None:
        self.store = store
        self.q = store.queries
        self._counts: tuple[int, int] | None = None  # (total, unread), None: unknown, count on next use
        self.mailbox = ""  # set on the views ``within`` makes
        self._scope: tuple[str, list[object]] | None = None
        self.verdicts: AuthChecks | None = None  # set by the web context: ``auth:`` searches check first
        store.events.subscribe(self._on_event)

    def within(self, mailbox: str) -> CaptureSource:
        """This source restricted to one capture mailbox (a recipient or AUTH user, any case); "" is every message.
        A per-request view: it shares the store and is not subscribed to its events (its counts are counted)."""
        if not mailbox.strip():
            return self
        view = copy.copy(self)
        view.mailbox = mailbox.strip().lower()
        view._scope = self.q.mailbox_where(view.mailbox)
        return view

    def _scoped(self, where: str, params: list[object]) -> tuple[str, list[object]]:
        if self._scope is None:
            return where, params
        return f"{self._scope[0]} AND ({where})", [*self._scope[1], *params]

    def _scoped_ids(self, query: str | None = None) -> list[str]:
        """The IDs of this mailbox's messages (matching ``query`` when given), for bulk changes."""
        try:
            where, params = self.q.compile(query) if query else ("1", [])
        except ValueError as e:
            raise SearchError(str(e)) from None
        where, params = self._scoped(where, params)
        return [r["id"] for r in self.q.select(where, params, columns="m.id")]

    def _on_event(self, event: dict[str, Any]) -> None:
        data = event.get("Data")
        if event.get("Type") == "stats" and isinstance(data, dict):
            self._counts = (int(data["Total"]), int(data["Unread"]))
        elif event.get("Type") != "stats":  # a change whose stats event has not arrived (or never will)
            self._counts = None

    def _totals(self) -> tuple[int, int]:
        if self._scope is not None:
            return self.q.count(*self._scope)
        if not self.q.counts_follow_events:  # other nodes change the store (a cluster): count
            return self.store.counts()
        counts = self._counts
        if counts is None:
            counts = self._counts = self.store.counts()
        return counts

    def _page(self, where: str, params: list[object], start: int, limit: int, before: float | None = None) -> Page:
        """One page for one condition of the index (the store's own ``list``/``search``, with the totals taken
        from ``_totals``). ``before`` pages by time as Mailpit's ``?before=`` (strictly older); a list keeps the
        mailbox totals as its counts, a search counts its matches (server/apiv1/messages.go)."""
        idx = self.q
        total, unread = self._totals()
        listing = where == "1"
        where, params = self._scoped(where, params)
        if before is not None:
            older, more = idx.older_than(ms(before))
            where, params = f"({where}) AND {older}", [*params, *more]
        if listing or not idx.scans_all(where):
            m_count, m_unread = (total, unread) if listing else idx.count(where, params)
            ids = [r["id"] for r in idx.select(where, params, start=start, limit=limit, columns="m.id")]
        else:  # one pass: free text is a LIKE scan of every message, too costly to run twice (count, then page)
            rows = idx.select(where, params, columns="m.id, m.read")
            m_count, m_unread = len(rows), sum(1 for r in rows if not r["read"])
            ids = [r["id"] for r in rows[start:start + limit]]
        msgs = [m for m in (self.store.summary(i) for i in ids) if m is not None]
        return Page(total=total, unread=unread, messages_count=m_count, messages_unread=m_unread, start=start,
                    tags=idx.all_tags(), messages=msgs)

    async def _run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))

    async def _verdicts_for(self, query: str | None) -> None:
        """An ``auth:`` search needs the SPF/DKIM/DMARC outcome of the messages it looks at: check those that have
        none yet (web/verdicts.py) before it runs."""
        if query and self.verdicts is not None and has_auth_term(query):
            await self.verdicts.fill(self)

    async def unchecked_ids(self, limit: int) -> list[str]:
        """IDs of this source's messages without a kept verdict, newest first."""
        where, params = self._scoped("m.auth IS NULL", [])
        rows = await self._run(self.q.select, where, params, limit=limit, columns="m.id")
        return [r["id"] for r in rows]

    async def set_auth(self, msg_id: str, terms: str) -> None:
        await self._run(self.q.set_auth, msg_id, terms)

    # ------------------------------------------------------------------ reading

    async def page(self, query: str | None, start: int, limit: int, tz: str | None = None,
                   before: float | None = None) -> Page:
        """Newest first, every message or a search's matches."""
        if query is None:
            return await self._run(self._page, "1", [], start, limit, before)
        q = apply_tz(query, tz)
        await self._verdicts_for(q)

        def run() -> Page:
            try:
                where, params = self.q.compile(q)
            except ValueError as e:
                raise SearchError(str(e)) from None
            return self._page(where, params, start, limit, before)

        return await self._run(run)

    async def resolve(self, msg_id: str) -> str | None:
        """The ID itself, or the newest message's for ``latest``; None when unknown."""
        if msg_id == "latest":
            if self._scope is not None:
                rows = await self._run(self.q.select, *self._scope, limit=1, columns="m.id")
                return rows[0]["id"] if rows else None
            return await self._run(self.store.latest_id)
        rows = await self._run(self.q.select, "m.id = ?", [msg_id], limit=1, columns="m.id")
        return msg_id if rows else None

    async def resolve_in(self, msg_id: str) -> str | None:
        """The ID when that message is in this source's mailbox (every message when unrestricted), else None."""
        where, params = self._scoped("m.id = ?", [msg_id])
        rows = await self._run(self.q.select, where, params, limit=1, columns="m.id")
        return rows[0]["id"] if rows else None

    async def message(self, msg_id: str) -> Message | None:
        return await self._run(self.store.get, msg_id)

    async def summary(self, msg_id: str) -> Summary | None:
        return await self._run(self.store.summary, msg_id)

    async def parse_errors(self, ids: list[str]) -> dict[str, str]:
        """{ID: why it could be read only in part} for those of ``ids`` (the UI's error mark)."""
        return await self._run(self.store.parse_errors, ids)

    async def raw(self, msg_id: str, trace: bool = False) -> bytes | None:
        return await self._run(self.store.raw, msg_id, trace)

    async def headers(self, msg_id: str) -> dict[str, list[str]] | None:
        return await self._run(self.store.headers, msg_id)

    async def part(self, msg_id: str, part_id: str) -> tuple[str, str, bytes] | None:
        return await self._run(self.store.part, msg_id, part_id)

    async def envelope(self, msg_id: str) -> CapturedEnvelope | None:
        return await self._run(self.store.envelope, msg_id)

    async def counts(self) -> tuple[int, int]:
        total, unread = await self._run(self._totals if self._scope is not None else self.store.counts)
        return int(total), int(unread)

    async def tags(self) -> list[str]:
        return list(await self._run(self.store.tags))

    # ------------------------------------------------------------------ changing

    async def set_read(self, ids: list[str] | None, read: bool, search: str | None = None,
                       tz: str | None = None) -> None:
        await self._verdicts_for(search)
        if self._scope is not None and (search or ids is None):
            ids = await self._run(self._scoped_ids, apply_tz(search, tz) if search else None)
        elif search:
            q = apply_tz(search, tz)

            def matching() -> list[str]:
                try:
                    return [m.id for m in self.store.search(q, start=0, limit=-1).messages]
                except ValueError as e:
                    raise SearchError(str(e)) from None

            ids = await self._run(matching)
        await self._run(self.store.set_read, ids, read)

    async def delete(self, ids: list[str] | None) -> None:
        if self._scope is not None and ids is None:  # "delete all" of a mailbox: its messages, not a truncate
            ids = await self._run(self._scoped_ids)
        await self._run(self.store.delete, ids)

    async def delete_search(self, query: str, tz: str | None = None) -> None:
        q = apply_tz(query, tz)
        await self._verdicts_for(q)
        if self._scope is not None:
            ids = await self._run(self._scoped_ids, q)
            await self._run(self.store.delete, ids)
            return

        def run() -> None:
            try:
                self.store.delete_search(q)
            except ValueError as e:
                raise SearchError(str(e)) from None

        await self._run(run)

    async def add(self, raw: bytes, mail_from: str, rcpts: list[str], username: str = "") -> str:
        return await self._run(self.store.add_bytes, raw, mail_from=mail_from, rcpts=rcpts,
                               user=username or None, listener="api")

    # ------------------------------------------------------------------ tags (through the store's queries)

    async def tag_counts(self) -> dict[str, int]:
        return await self._run(self.q.tag_counts)

    async def set_tags(self, ids: list[str], tags: list[str]) -> None:
        await self._run(self.q.set_tags, ids, tags)
        events = self.store.events
        for i in ids:  # Mailpit's ``update`` frame for a tag change: {ID, Tags} (internal/storage/tags.go)
            events.publish("update", {"ID": i, "Tags": list(tags)})
        events.publish("stats", await self._run(self.store.stats))

    async def rename_tag(self, old: str, new: str) -> None:
        await self._run(self.q.rename_tag, old, new)
        self.store.events.publish("prune", None)  # the UI reloads its list, as after Mailpit's rename

    async def delete_tag(self, tag: str) -> None:
        await self._run(self.q.delete_tag, tag)
        self.store.events.publish("prune", None)

    def db_path(self) -> Path | None:
        return self.q.db_path()
