"""The one place records become Mailpit's JSON: field names, their order, and RFC 3339 dates.

Both message sources (``web/source.py``: the capture store, the server-mode mailboxes) answer with the typed records
of ``courrier/capture/records.py``; the API modules, the WebSocket frames and the webhook body pass them through
here, so the two modes cannot drift apart in spelling. Key order follows Mailpit's own answers (clients and the
golden test ``tests/web/test_api_json.py`` see the same text as before the records existed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from courrier.capture.records import Address, Message, Page, Part, Summary

_LAST_TS = 253402300799.999  # 9999-12-31T23:59:59.999Z, the last instant RFC 3339 (and datetime) can write


def iso(ts: float) -> str:
    """RFC 3339 with milliseconds, UTC ("2026-11-27T12:00:00.123Z"), as Mailpit's JSON dates. A sender's Date
    outside years 1970-9999 ("31 Dec 9999 23:59:59 -2359") is clamped: a bad header never fails the API."""
    ts = min(max(float(ts), 0.0), _LAST_TS) if ts == ts else 0.0  # NaN → the epoch
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def address(a: Address) -> dict[str, str]:
    return {"Name": a.name, "Address": a.address}


def address_list(items: list[Address]) -> list[dict[str, str]]:
    return [address(a) for a in items]


def summary(s: Summary) -> dict[str, Any]:
    """MessageSummary."""
    return {
        "ID": s.id, "MessageID": s.message_id, "Read": s.read, "From": address(s.from_), "To": address_list(s.to),
        "Cc": address_list(s.cc), "Bcc": address_list(s.bcc), "ReplyTo": address_list(s.reply_to),
        "Subject": s.subject, "Created": iso(s.created), "Username": s.username, "Tags": list(s.tags),
        "Size": s.size, "Attachments": s.attachments, "Snippet": s.snippet,
    }


def page(p: Page) -> dict[str, Any]:
    """MessagesSummary, with the legacy ``count`` (messages on this page) Mailpit still sends for older clients."""
    return {"total": p.total, "unread": p.unread, "count": len(p.messages), "messages_count": p.messages_count,
            "messages_unread": p.messages_unread, "start": p.start, "tags": list(p.tags),
            "messages": [summary(s) for s in p.messages]}


def part(a: Part) -> dict[str, Any]:
    """Attachment."""
    return {"PartID": a.part_id, "FileName": a.filename, "ContentType": a.content_type, "ContentID": a.content_id,
            "Size": a.size, "Checksums": {"MD5": a.md5, "SHA1": a.sha1, "SHA256": a.sha256}}


def message(m: Message) -> dict[str, Any]:
    """Message, with the legacy ``Read`` older clients read (Mailpit dropped it from the swagger, not from them)."""
    s = m.summary
    return {
        "ID": s.id, "MessageID": s.message_id, "Read": s.read, "From": address(s.from_), "To": address_list(s.to),
        "Cc": address_list(s.cc), "Bcc": address_list(s.bcc), "ReplyTo": address_list(s.reply_to),
        "ReturnPath": m.return_path, "Subject": s.subject,
        "ListUnsubscribe": {"Header": m.list_unsubscribe, "Links": list(m.list_unsubscribe_links),
                            "Errors": m.list_unsubscribe_errors,
                            "HeaderPost": m.list_unsubscribe_post},
        "Date": iso(m.date), "Tags": list(s.tags), "Username": s.username, "Text": m.text, "HTML": m.html,
        "Size": s.size, "Inline": [part(a) for a in m.inline], "Attachments": [part(a) for a in m.attachments],
    }


def event(e: dict[str, Any]) -> dict[str, Any]:
    """A live event (``capture/events.py``) as Mailpit's WebSocket frame: a ``new`` event carries a Summary."""
    data = e.get("Data")
    return {"Type": e.get("Type"), "Data": summary(data) if isinstance(data, Summary) else data}
