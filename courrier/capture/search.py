"""Mailpit's search syntax, compiled to one SQL condition over ``capture_messages m`` (parameters bound, never
interpolated).

    hello "exact phrase"          substrings anywhere: subject, addresses, decoded text ("port" finds "report")
    from:alice  to:bob  cc:x  bcc:x  reply-to:x  addressed:x (From, To, Cc, Bcc or Reply-To)
    subject:"weekly report"  message-id:abc (a substring)  tag:news
    is:read  is:unread  is:tagged  has:attachment(s)  has:inline(s)
    before:2024/04/01  after:2026-11-01T08:00  (dates as Mailpit's dateparse reads them — ``parse_when``; UTC
                                                 unless an offset is given; both bounds inclusive, to the millisecond)
    larger:1M  smaller:10k
    -word  -from:alice  !is:read                       negation
    client:203.0.113.9  helo:app.local                 courrier's own: the SMTP client's address (exactly, port
                                                       aside) and a substring of the name it gave in EHLO/HELO
    header:X-Mailer:PHPMailer  header:List-Id          a header field by name (any case) whose decoded value
                                                       contains the text; without a value: the field is present
    auth:fail  auth:pass  auth:unverifiable            the SPF/DKIM/DMARC verdict (fail = forged, pass = authentic)
    auth:spf:fail  auth:dkim:pass  auth:dmarc:none     one mechanism's result (also written ``spf=fail``)
These are the rules of Mailpit's ``internal/storage/search.go`` (``searchQueryBuilder``). Terms are ANDed. A ``key:`` courrier does not know is searched as plain text (as Mailpit does), and so is a date
or size it cannot read; a size it reads but that does not fit a 64-bit integer (``larger:99999999999999999999G``)
is a ``QueryError``: the API answers 400, never 500.
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime, tzinfo

MAX_SIZE = 2 ** 63 - 1  # SQLite's INTEGER


# ``auth:`` values: the verdict's words (web/verdicts.py stores " verdict:V spf:R dkim:R… dmarc:R " per message)
AUTH_VERDICTS = {"pass": "authentic", "authentic": "authentic", "fail": "forged", "forged": "forged",
                 "unverifiable": "unverifiable"}
AUTH_MECHANISMS = ("spf", "dkim", "dmarc")


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


# The forms Mailpit's dateparse reads that ``fromisoformat`` does not: slashes, month names, a space before the time.
_FORMATS = ("%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d %b %Y", "%d %B %Y",
            "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y", "%m/%d/%Y")


def parse_datetime(value: str, zone: tzinfo | None = None) -> datetime:
    """A date as Mailpit's ``dateparse.ParseLocal`` reads it → an aware datetime; a time without an offset is read
    in ``zone`` (UTC by default). Unix seconds (or milliseconds, 13 digits) are accepted too."""
    v = value.strip()
    if v.replace(".", "", 1).isdigit():
        ts = float(v)
        try:
            return datetime.fromtimestamp(ts / 1000 if len(v.split(".")[0]) >= 13 else ts, UTC)
        except (OverflowError, OSError, ValueError):  # beyond year 9999
            raise ValueError(f"bad date {value[:40]!r}") from None
    dt: datetime | None = None
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _FORMATS:
            try:
                dt = datetime.strptime(v, fmt)
                break
            except ValueError:
                continue
    if dt is None:
        try:  # RFC 5322 §3.3 date-time, as in a Date field
            dt = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"bad date {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone or UTC)
    return dt


def parse_when(value: str, zone: tzinfo | None = None) -> float:
    """``parse_datetime`` as unix seconds."""
    return parse_datetime(value, zone).timestamp()


def ms(ts: float) -> int:
    """Milliseconds since the epoch, as Mailpit stores ``Created`` and as the API shows it (truncated)."""
    return math.floor(ts * 1000)


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


FREE_TEXT_SCAN = "SELECT rowid FROM capture_fts WHERE subject LIKE"  # marks a condition that scans every message


def _text(value: str) -> tuple[str, list[object]]:
    """Free text: a substring of the subject, the addresses or the decoded text (Mailpit: ``SearchText LIKE``).
    SQLite's LIKE folds ASCII case only, so the FTS5 word match (unicode61: every script's case, accents) is
    ORed in: "RELEVÉ" still finds "Relevé"."""
    p = _like(value)
    like = (f"m.seq IN ({FREE_TEXT_SCAN} ? ESCAPE '\\' "
            "OR addresses LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\')")
    if any(c.isalnum() for c in value):
        return (f"(m.seq IN (SELECT rowid FROM capture_fts WHERE capture_fts MATCH ?) OR {like})",
                ['"' + value.replace('"', '""') + '"*', p, p, p])
    return like, [p, p, p]


_ADDR_COLS = {"from": ["from_json"], "to": ["to_json"], "cc": ["cc_json"], "bcc": ["bcc_json"],
              "reply-to": ["reply_to_json"],
              "addressed": ["to_json", "from_json", "cc_json", "bcc_json", "reply_to_json"]}


def _term(key: str, value: str) -> tuple[str, list[object]]:
    if key in _ADDR_COLS:
        cols = _ADDR_COLS[key]
        return "(" + " OR ".join(f"m.{c} LIKE ? ESCAPE '\\'" for c in cols) + ")", [_like(value)] * len(cols)
    if key == "subject":
        return "m.subject LIKE ? ESCAPE '\\'", [_like(value)]
    if key == "message-id":
        return "m.message_id LIKE ? ESCAPE '\\'", [_like(value.strip().strip("<>"))]
    if key == "client":  # the envelope keeps "ip:port", "[v6]:port" for IPv6
        ip = value.strip().strip("[]").lower()
        return ("(json_extract(m.envelope, '$.client') LIKE ? ESCAPE '\\' "
                "OR json_extract(m.envelope, '$.client') LIKE ? ESCAPE '\\')",
                [_like(ip)[1:-1] + ":%", "[" + _like(ip)[1:-1] + "]:%"])
    if key == "helo":
        return "json_extract(m.envelope, '$.helo') LIKE ? ESCAPE '\\'", [_like(value)]
    if key == "header":
        return _header(value)
    if key == "auth":
        return _auth(value)
    if key == "tag":
        return "EXISTS (SELECT 1 FROM capture_tags t WHERE t.seq = m.seq AND t.tag = ? COLLATE NOCASE)", [value]
    v = value.lower()
    if key == "is" and v in ("read", "unread", "tagged"):
        return {"read": ("m.read = 1", []), "unread": ("m.read = 0", []),
                "tagged": ("EXISTS (SELECT 1 FROM capture_tags t WHERE t.seq = m.seq)", [])}[v]
    if key == "has" and v in ("attachment", "attachments"):
        return "m.attachments > 0", []
    if key == "has" and v in ("inline", "inlines"):
        return "m.inline > 0", []
    try:
        if key == "before":  # inclusive at Created's precision (milliseconds), as Mailpit's ``<=``
            return "CAST(m.created * 1000 AS INTEGER) <= ?", [ms(parse_when(value))]
        if key == "after":
            return "CAST(m.created * 1000 AS INTEGER) >= ?", [ms(parse_when(value))]
        if key == "larger":
            return "m.size > ?", [parse_size(value)]
        if key == "smaller":
            return "m.size < ?", [parse_size(value)]
    except QueryError:
        raise
    except ValueError:
        pass
    return _text(f"{key}:{value}" if key else value)


def _header(value: str) -> tuple[str, list[object]]:
    """``header:Name`` (present) or ``header:Name:text`` (a field of that name containing the text, any case), over
    the ``headers`` column: [[lower-cased name, decoded value]…] (parse.header_pairs)."""
    name, sep, text = value.partition(":")
    name, text = name.strip().lower(), text.strip()
    base = ("EXISTS (SELECT 1 FROM json_each(coalesce(m.headers, '[]')) h "
            "WHERE json_extract(h.value, '$[0]') = ?")
    if not sep or not text:
        return base + ")", [name]
    return base + " AND json_extract(h.value, '$[1]') LIKE ? ESCAPE '\\')", [name, _like(text)]


def has_auth_term(query: str) -> bool:
    """Whether the search needs the messages' SPF/DKIM/DMARC outcome (computed on demand, web/verdicts.py)."""
    return any(key == "auth" for _, key, _ in tokenize(query))


def _auth(value: str) -> tuple[str, list[object]]:
    """``auth:fail`` (the verdict) or ``auth:spf:fail`` / ``auth:spf=fail`` (one mechanism's result) over the
    ``auth`` column; a message not checked yet (NULL) matches neither a term nor its negation."""
    v = value.strip().lower().replace("=", ":")
    mech, sep, result = v.partition(":")
    if sep and mech in AUTH_MECHANISMS and result:
        word = f"{mech}:{result}"
    elif v in AUTH_VERDICTS:
        word = f"verdict:{AUTH_VERDICTS[v]}"
    else:
        word = f"verdict:{v}"
    return "(m.auth IS NOT NULL AND m.auth LIKE ? ESCAPE '\\')", ["% " + _like(word)[1:-1] + " %"]


def compile_query(query: str) -> tuple[str, list[object]]:
    """``query`` → (SQL condition on ``m``, parameters). An empty query matches everything ("1")."""
    parts: list[str] = []
    params: list[object] = []
    for neg, key, value in tokenize(query):
        sql, p = _term(key, value)
        parts.append(f"NOT ({sql})" if neg else sql)
        params += p
    return (" AND ".join(parts) if parts else "1"), params
