"""Mailpit's search syntax, compiled to one SQL condition over ``capture_messages m`` (parameters bound, never
interpolated).

    hello "exact phrase"          words, word prefixes and phrases anywhere: subject, addresses, decoded text (FTS5)
    from:alice  to:bob  cc:x  bcc:x  reply-to:x  addressed:x (To, Cc or Bcc)
    subject:"weekly report"  message-id:abc@host  tag:news
    is:read  is:unread  is:tagged  has:attachment  has:inline
    before:2026-11-27  after:2026-11-01T08:00  (dates: YYYY-MM-DD, ISO 8601, UTC unless an offset is given)
    larger:1M  smaller:10k
    -word  -from:alice  !is:read                       negation
Terms are ANDed. A ``key:`` courrier does not know is searched as plain text (as Mailpit does), and so is a date
or size it cannot read; a size it reads but that does not fit a 64-bit integer (``larger:99999999999999999999G``)
is a ``QueryError``: the API answers 400, never 500.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

MAX_SIZE = 2 ** 63 - 1  # SQLite's INTEGER


class QueryError(ValueError):
    """A term courrier understands whose value it cannot use (a size beyond MAX_SIZE): the search is refused."""


def tokenize(query: str) -> list[tuple[bool, str, str]]:
    """(negated, key or "", value) per term; quotes group words (``subject:"a b"``, ``"a b"``)."""
    out: list[tuple[bool, str, str]] = []
    i, n = 0, len(query)
    while i < n:
        while i < n and query[i].isspace():
            i += 1
        if i >= n:
            break
        neg = False
        if query[i] in "-!" and i + 1 < n and not query[i + 1].isspace():
            neg, i = True, i + 1
        buf, key = "", ""
        while i < n and not query[i].isspace():
            c = query[i]
            if c == '"':
                j = query.find('"', i + 1)
                j = n if j < 0 else j
                buf += query[i + 1:j]
                i = j + 1
                continue
            if c == ":" and not key and buf and not buf.startswith("http"):
                key, buf = buf.lower(), ""
                i += 1
                continue
            buf += c
            i += 1
        if key and not buf:
            buf, key = key + ":", ""
        if buf or key:
            out.append((neg, key, buf))
    return out


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def parse_when(value: str) -> float:
    """YYYY-MM-DD (start of that day, UTC), an ISO 8601 date-time, or unix seconds → unix seconds."""
    v = value.strip()
    if v.replace(".", "", 1).isdigit():
        return float(v)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad date {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_size(value: str) -> int:
    """"10k", "1.5M", "2G", "123" → octets; ValueError when unreadable, QueryError when it does not fit."""
    v = value.strip().lower().rstrip("b")
    mult = 1
    if v and v[-1] in "kmg":
        mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[v[-1]]
        v = v[:-1]
    too_large = QueryError(f"size {value[:40]!r} is too large (at most {MAX_SIZE} octets)")
    digits = v.lstrip("+-")
    if digits.isascii() and digits.isdigit():  # integers exactly (float would round 2**63-1 up)
        if len(digits.lstrip("0")) > 19:
            raise too_large
        n = int(v) * mult
    else:
        try:
            f = float(v) * mult
        except ValueError:
            raise ValueError(f"bad size {value!r}") from None
        if math.isnan(f):
            raise ValueError(f"bad size {value!r}")
        if math.isinf(f) or abs(f) > MAX_SIZE:
            raise too_large
        n = int(f)
    if abs(n) > MAX_SIZE:
        raise too_large
    return n


def _text(value: str) -> tuple[str, list[object]]:
    if any(c.isalnum() for c in value):
        # FTS5 phrase whose last word may be a prefix: "quarterly rep" finds "quarterly report"
        return ("m.seq IN (SELECT rowid FROM capture_fts WHERE capture_fts MATCH ?)",
                ['"' + value.replace('"', '""') + '"*'])
    p = _like(value)  # punctuation only ("@", "#"): no word to look up
    return ("m.seq IN (SELECT rowid FROM capture_fts WHERE subject LIKE ? ESCAPE '\\' "
            "OR addresses LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\')", [p, p, p])


_ADDR_COLS = {"from": ["from_json"], "to": ["to_json"], "cc": ["cc_json"], "bcc": ["bcc_json"],
              "reply-to": ["reply_to_json"], "addressed": ["to_json", "cc_json", "bcc_json"]}


def _term(key: str, value: str) -> tuple[str, list[object]]:
    if key in _ADDR_COLS:
        cols = _ADDR_COLS[key]
        return "(" + " OR ".join(f"m.{c} LIKE ? ESCAPE '\\'" for c in cols) + ")", [_like(value)] * len(cols)
    if key == "subject":
        return "m.subject LIKE ? ESCAPE '\\'", [_like(value)]
    if key == "message-id":
        return "m.message_id = ?", [value.strip().strip("<>")]
    if key == "tag":
        return "EXISTS (SELECT 1 FROM capture_tags t WHERE t.seq = m.seq AND t.tag = ? COLLATE NOCASE)", [value]
    v = value.lower()
    if key == "is" and v in ("read", "unread", "tagged"):
        return {"read": ("m.read = 1", []), "unread": ("m.read = 0", []),
                "tagged": ("EXISTS (SELECT 1 FROM capture_tags t WHERE t.seq = m.seq)", [])}[v]
    if key == "has" and v in ("attachment", "attachments"):
        return "m.attachments > 0", []
    if key == "has" and v == "inline":
        return "m.inline > 0", []
    try:
        if key == "before":
            return "m.created < ?", [parse_when(value)]
        if key == "after":
            return "m.created > ?", [parse_when(value)]
        if key == "larger":
            return "m.size > ?", [parse_size(value)]
        if key == "smaller":
            return "m.size < ?", [parse_size(value)]
    except QueryError:
        raise
    except ValueError:
        pass
    return _text(f"{key}:{value}" if key else value)


def compile_query(query: str) -> tuple[str, list[object]]:
    """``query`` → (SQL condition on ``m``, parameters). An empty query matches everything ("1")."""
    parts: list[str] = []
    params: list[object] = []
    for neg, key, value in tokenize(query):
        sql, p = _term(key, value)
        parts.append(f"NOT ({sql})" if neg else sql)
        params += p
    return (" AND ".join(parts) if parts else "1"), params
