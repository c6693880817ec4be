"""``MailboxView``: the API's message source in server mode — one selected mailbox, and any message by its ID.

It is the server mode's ``source.MessageSource`` (``store.CaptureSource`` is the capture mode's), so the API modules
serve both modes alike. The
mailbox, the IDs, the summaries and the changes are ``mailboxes.MailboxSource``'s; search is ``mailsearch``; live
events come from ``watch``, woken by the mailbox notifier that local delivery and the IMAP server also use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from courrier import __version__, log
from courrier.capture import parse as P
from courrier.capture.envelope import CapturedEnvelope
from courrier.capture.records import Message, Page, Summary, message_of
from courrier.capture.search import ms
from courrier.mailbox import flags as F
from courrier.mailbox.api import Msg, Snapshot
from courrier.web.mailboxes import (
    KEYWORD,
    Mailbox,
    MailboxError,
    MailboxSource,
    decode_id,
    encode_id,
    envelope_of,
    keywords,
)
from courrier.web.mailsearch import matching as _matching
from courrier.web.store import SearchError, apply_tz

PARSE_ERROR_IDS = 1000  # parse_errors: IDs looked up per call (a page of the list is 50)


def matching(src: MailboxSource, mb: Mailbox, snap: Snapshot, query: str) -> list[Msg]:
    """``mailsearch.matching``, with a query it cannot run (a size that does not fit) as a SearchError (400)."""
    try:
        return _matching(src, mb, snap, query)
    except ValueError as e:
        raise SearchError(str(e)) from None


class MailboxView:
    """The API's message source for one request: the selected mailbox, and any message by its ID.

    A ``source.MessageSource``, as ``store.CaptureSource`` (capture mode) is."""

    def __init__(self, src: MailboxSource, mailbox: str | None, default_account: str | None) -> None:
        self.src = src
        name = mailbox if mailbox else (f"{default_account}/INBOX" if default_account else None)
        if name is None:
            raise HTTPException(400, "mailbox: required in server mode (e.g. ?mailbox=bob@example.test/INBOX)")
        try:
            self.mb = src.parse(name)
        except MailboxError as e:
            raise HTTPException(400, str(e)) from None

    async def _checked(self) -> Mailbox:
        if not await self.src.run(self.src.check, self.mb):
            raise HTTPException(404, f"mailbox not found: {self.mb.name}")
        return self.mb

    async def mailbox(self) -> Mailbox:
        """The selected mailbox, once its account and folder are known to exist (404 otherwise)."""
        return await self._checked()

    async def _find(self, msg_id: str) -> tuple[Mailbox, Msg] | None:
        return await self.src.run(self.src.find, msg_id)

    # ------------------------------------------------------------------ reading

    async def page(self, query: str | None, start: int, limit: int, tz: str | None = None,
                   before: float | None = None) -> Page:
        mb = await self._checked()
        q = apply_tz(query, tz) if query is not None else None
        src = self.src

        def run() -> Page:
            snap = src.snapshot(mb)
            total = len(snap.messages)
            unread = sum(1 for m in snap.messages if F.SEEN not in m.flags)
            found = list(reversed(snap.messages)) if q is None else matching(src, mb, snap, q)
            if before is not None:
                found = [m for m in found if ms(m.internaldate) < ms(before)]
            m_unread = unread if q is None else sum(1 for m in found if F.SEEN not in m.flags)
            msgs = [s for s in (src.summary(mb, snap, m) for m in found[start:start + limit]) if s is not None]
            tags = sorted({k for m in snap.messages for k in keywords(m.flags)}, key=str.casefold)
            return Page(total=total, unread=unread, messages_count=len(found), messages_unread=m_unread,
                        start=start, tags=tags, messages=msgs)

        return await src.run(run)

    async def resolve(self, msg_id: str) -> str | None:
        if msg_id == "latest":
            mb = await self._checked()
            snap = await self.src.run(self.src.snapshot, mb)
            return encode_id(mb, snap.uidvalidity, snap.messages[-1].uid) if snap.messages else None
        return msg_id if await self._find(msg_id) is not None else None

    async def _load(self, msg_id: str) -> tuple[Mailbox, Msg, bytes] | None:
        def run() -> tuple[Mailbox, Msg, bytes] | None:
            found = self.src.find(msg_id)
            if found is None:
                return None
            data = self.src.read(*found)
            return None if data is None else (*found, data)

        return await self.src.run(run)

    async def message(self, msg_id: str) -> Message | None:
        src = self.src

        def run() -> Message | None:
            try:
                return whole()
            except Exception as e:  # noqa: BLE001 — one unreadable file: logged with its ID, answered as unknown
                log.event("http.message_unreadable", level="error", id=msg_id, error=repr(e)[:300])
                return None

        def whole() -> Message | None:
            found = src.find(msg_id)
            if found is None:
                return None
            mb, m = found
            data = src.read(mb, m)
            snap = src.snapshot(mb)
            s = src.summary(mb, snap, m)
            if data is None or s is None:
                return None
            info = src.info(mb, snap.uidvalidity, m)
            msg, p = P.parse(data)
            return message_of(s, msg, p, (info.return_path if info else "") or "", m.internaldate)

        return await src.run(run)

    async def parse_errors(self, ids: list[str]) -> dict[str, str]:
        """{ID: why it could be read only in part} for those of ``ids`` (the UI's error mark)."""
        def run() -> dict[str, str]:
            out: dict[str, str] = {}
            for i in ids[:PARSE_ERROR_IDS]:
                found = self.src.find(i)
                info = None if found is None else self.src.info(found[0], self.src.snapshot(found[0]).uidvalidity,
                                                                found[1])
                if info is not None and info.error:
                    out[i] = info.error
            return out

        return await self.src.run(run)

    async def summary(self, msg_id: str) -> Summary | None:
        def run() -> Summary | None:
            found = self.src.find(msg_id)
            return None if found is None else self.src.summary(found[0], self.src.snapshot(found[0]), found[1])

        return await self.src.run(run)

    async def raw(self, msg_id: str, trace: bool = False) -> bytes | None:
        """The stored file (our trace fields included: they are part of the delivered message), CRLF."""
        got = await self._load(msg_id)
        return None if got is None else got[2].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    async def headers(self, msg_id: str) -> dict[str, list[str]] | None:
        got = await self._load(msg_id)
        if got is None:
            return None
        return P.header_fields(got[2])  # the program's one header reader: the fields IMAP and submission see

    async def part(self, msg_id: str, part_id: str) -> tuple[str, str, bytes] | None:
        got = await self._load(msg_id)
        if got is None:
            return None
        part = P.find_part(P.message_of(got[2]), part_id)  # the tree ``message`` numbered the parts in
        if part is None:
            return None
        return part.get_content_type(), P.part_filename(part), P.part_bytes(part)

    async def envelope(self, msg_id: str) -> CapturedEnvelope | None:
        def run() -> CapturedEnvelope | None:
            found = self.src.find(msg_id)
            if found is None:
                return None
            mb, m = found
            info = self.src.info(mb, self.src.snapshot(mb).uidvalidity, m)
            return None if info is None else envelope_of(info, m)

        return await self.src.run(run)

    async def counts(self) -> tuple[int, int]:
        mb = await self._checked()
        snap = await self.src.run(self.src.snapshot, mb)
        return len(snap.messages), sum(1 for m in snap.messages if F.SEEN not in m.flags)

    async def tags(self) -> list[str]:
        mb = await self._checked()
        snap = await self.src.run(self.src.snapshot, mb)
        return sorted({k for m in snap.messages for k in keywords(m.flags)}, key=str.casefold)

    async def tag_counts(self) -> dict[str, int]:
        mb = await self._checked()
        snap = await self.src.run(self.src.snapshot, mb)
        out: dict[str, int] = {}
        for m in snap.messages:
            for k in keywords(m.flags):
                out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: kv[0].casefold()))

    def db_path(self) -> Path | None:
        return self.src.store.db_path

    # ------------------------------------------------------------------ changing

    async def _targets(self, ids: list[str] | None, search: str | None = None,
                       tz: str | None = None) -> dict[Mailbox, list[int]]:
        """The messages a change applies to, by mailbox: the IDs given, else the selected mailbox (all, or the
        search's matches)."""
        if ids is None:
            mb = await self._checked()
            q = apply_tz(search, tz) if search else None

            def run() -> list[int]:
                snap = self.src.snapshot(mb)
                msgs = snap.messages if q is None else matching(self.src, mb, snap, q)
                return [m.uid for m in msgs]

            return {mb: await self.src.run(run)}
        out: dict[Mailbox, list[int]] = {}
        for i in ids:
            got = decode_id(i)
            if got is None:
                continue
            try:
                mb = self.src.parse(got[0])
            except MailboxError:
                continue
            if not await self.src.run(self.src.check, mb):
                continue
            snap = await self.src.run(self.src.snapshot, mb)
            if snap.uidvalidity == got[1]:
                out.setdefault(mb, []).append(got[2])
        return out

    async def set_read(self, ids: list[str] | None, read: bool, search: str | None = None,
                       tz: str | None = None) -> None:
        for mb, uids in (await self._targets(ids, search, tz)).items():
            def run(mb: Mailbox = mb, uids: list[int] = uids) -> int:
                return self.src.set_seen(mb, self.src.snapshot(mb), uids, read)

            if await self.src.run(run):
                self.src.store.notify(mb.path)  # IMAP sessions (IDLE, selected) and our WebSocket watchers

    async def delete(self, ids: list[str] | None) -> None:
        for mb, uids in (await self._targets(ids)).items():
            n = await self.src.run(self.src.expunge, mb, uids)
            if n:
                log.event("http.expunged", mailbox=mb.name, count=n)
                self.src.store.notify(mb.path)

    async def delete_search(self, query: str, tz: str | None = None) -> None:
        for mb, uids in (await self._targets(None, query, tz)).items():
            if uids and await self.src.run(self.src.expunge, mb, uids):
                log.event("http.expunged", mailbox=mb.name, count=len(uids))
                self.src.store.notify(mb.path)

    async def add(self, raw: bytes, mail_from: str, rcpts: list[str], username: str = "") -> str:
        raise HTTPException(400, "sending through the API is not available in server mode: "
                                 "submit mail over SMTP (the submission port) instead")

    async def _retag(self, ids: list[str] | None, change: Callable[[Msg], frozenset[str] | None]) -> None:
        for mb, uids in (await self._targets(ids)).items():
            wanted = set(uids)

            def run(mb: Mailbox = mb, wanted: set[int] = wanted) -> int:
                return self.src.set_keywords(mb, self.src.snapshot(mb),
                                             lambda m: change(m) if m.uid in wanted else None)

            if await self.src.run(run):
                self.src.store.notify(mb.path)

    async def set_tags(self, ids: list[str], tags: list[str]) -> None:
        """Tags are IMAP keywords (RFC 3501 §2.3.2): the message's keywords become exactly ``tags``."""
        bad = [t for t in tags if not KEYWORD.match(t)]
        if bad:
            raise SearchError(f"tag {bad[0]!r} is not a valid IMAP keyword (no spaces or ( ) {{ % * \" \\ ])")
        want = frozenset(tags)
        await self._retag(ids, lambda m: frozenset(f for f in m.flags if f.startswith("\\")) | want)

    async def rename_tag(self, old: str, new: str) -> None:
        if not KEYWORD.match(new):
            raise SearchError(f"tag {new!r} is not a valid IMAP keyword")
        await self._retag(None, lambda m: (m.flags - {old}) | {new} if old in m.flags else None)

    async def delete_tag(self, tag: str) -> None:
        await self._retag(None, lambda m: m.flags - {tag} if tag in m.flags else None)

    # ------------------------------------------------------------------ live events

    async def watch(self, emit: Callable[[dict[str, Any]], None], poll: float = 5.0) -> None:
        """Sends Mailpit's events for the selected mailbox until cancelled: ``new`` (a Summary), ``update``
        (\\Seen changed), ``delete``, ``prune`` (the folder was re-created: reload), then ``stats``.

        Woken by ``MailStore.notify`` (local delivery, IMAP, this API); changes by other processes (mutt, Dovecot)
        are found by a rescan every ``poll`` seconds."""
        mb = await self._checked()
        src = self.src
        wake = asyncio.Event()
        unsubscribe = src.store.subscribe(mb.path, wake.set)
        try:
            prev = await src.run(src.snapshot, mb)
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), poll)
                except TimeoutError:
                    pass
                wake.clear()
                snap = await src.run(src.snapshot, mb)
                if snap is prev:
                    continue
                events = await src.run(_diff, src, mb, prev, snap)
                prev = snap
                for e in events:
                    emit(e)
        finally:
            unsubscribe()


def _diff(src: MailboxSource, mb: Mailbox, old: Snapshot, new: Snapshot) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if old.uidvalidity != new.uidvalidity:
        events.append({"Type": "prune", "Data": None})
    else:
        before = {m.uid: m for m in old.messages}
        after = {m.uid for m in new.messages}
        for uid in sorted(set(before) - after):
            events.append({"Type": "delete", "Data": {"ID": encode_id(mb, old.uidvalidity, uid)}})
        for m in new.messages:
            was = before.get(m.uid)
            if was is None:
                s = src.summary(mb, new, m)
                if s is not None:
                    events.append({"Type": "new", "Data": s})
            elif (F.SEEN in was.flags) != (F.SEEN in m.flags):
                events.append({"Type": "update", "Data": {"ID": encode_id(mb, new.uidvalidity, m.uid),
                                                           "Read": F.SEEN in m.flags}})
    if events:
        unread = sum(1 for m in new.messages if F.SEEN not in m.flags)
        events.append({"Type": "stats", "Data": {"Total": len(new.messages), "Unread": unread,
                                                 "Version": __version__}})
    return events
