"""Mailpit's search syntax compiled for PostgreSQL: one condition over ``capture_messages m`` (migration 0006).

The grammar, the tokenizer and the value readers (dates, sizes, ``auth:`` words) are the local store's
(``courrier/capture/search.py``); only the SQL differs, term by term, so that both stores answer the same messages:

| term                                  | SQLite (local store)                    | PostgreSQL (here)                         |
|---------------------------------------|-----------------------------------------|-------------------------------------------|
| free text ``word``, ``"a phrase"``    | FTS5 word-prefix match OR ``LIKE %v%``  | ``search_tsv @@ tsquery`` (GIN) OR        |
|                                       | on subject, addresses, decoded text     | ``search_text ILIKE %v%``                 |
| ``from: to: cc: bcc: reply-to:``      | ``LIKE`` on the JSON text of the column | ``ILIKE`` on the same JSON text           |
| ``addressed:``                        | any of the five                         | any of the five                           |
| ``subject: message-id:``              | ``LIKE``                                | ``ILIKE``                                 |
| ``tag:``                              | ``capture_tags`` ``COLLATE NOCASE``     | ``capture_tags``, ``lower() = lower()``   |
| ``is:read/unread/tagged``             | ``read``, ``EXISTS`` tag                | the same                                  |
| ``has:attachment(s)/inline(s)``       | counts                                  | counts                                    |
| ``before: after:``                    | ``CAST(created*1000 AS INTEGER)``       | ``floor(created*1000)`` (both inclusive)   |
| ``larger: smaller:``                  | ``size``                                | ``size``                                  |
| ``client: helo:``                     | ``json_extract(envelope)``              | ``envelope->>'…'``                        |
| ``header:Name[:text]``                | ``json_each(headers)``                  | ``jsonb_array_elements(headers)``         |
| ``auth:…``                            | ``auth LIKE``                           | ``auth ILIKE``                            |

Words for the text index are cut and folded here, in Python, as FTS5's ``unicode61 remove_diacritics 2`` does: runs
of letters and digits, case-folded, accents removed — "RELEVÉ" finds "Relevé" and "releve" too. The ``tsvector`` and
``tsquery`` are written as literals (``'word':3``, ``'a' <-> 'b':*``), so PostgreSQL's own parser (which keeps e-mail
addresses and host names whole) never cuts them differently. The ILIKE beside it keeps Mailpit's substring rule
("port" finds "report"). LIKE patterns and every value are bound parameters; conditions use ``?`` placeholders, as
``capture/api.py`` asks, and ``capture_store.py`` turns them into psycopg's.
"""

from __future__ import annotations

import re
import unicodedata

from courrier.capture.search import (
    AUTH_MECHANISMS,
    AUTH_VERDICTS,
    QueryError,
    _like,
    ms,
    parse_size,
    parse_when,
    tokenize,
)

FREE_TEXT_SCAN = "m.search_text ILIKE"  # marks a condition that reads every message
MAX_POSITION = 16383  # PostgreSQL's largest tsvector position
MAX_POSITIONS = 256  # positions kept per word (PostgreSQL's limit)
MAX_WORD_BYTES = 2000  # a longer "word" (base64 in a text part) is left to the ILIKE (PostgreSQL's limit: 2047)
MAX_TSVECTOR = 600_000  # bytes of words and positions per message (PostgreSQL refuses a tsvector of 1 MiB)

_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Case-folded, accents removed (NFKD, combining marks dropped)."""
    t = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in t if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def _quote(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _fits(word: str) -> bool:
    return len(word) * 4 <= MAX_WORD_BYTES or len(word.encode("utf-8")) <= MAX_WORD_BYTES


def tsvector(*columns: str) -> str:
    """A tsvector literal of the columns' words with their positions; a gap between columns keeps a phrase from
    running from one into the next (FTS5 matches a phrase within one column). Bounded: once MAX_TSVECTOR bytes are
    used, later words are left to the substring match."""
    where: dict[str, list[int]] = {}
    pos, size = 1, 0
    for col in columns:
        for w in words(col):
            p = where.get(w)
            if p is None:
                if size > MAX_TSVECTOR or not _fits(w):
                    pos += 1
                    continue
                p = where[w] = []
                size += len(w.encode("utf-8")) + 8
            if len(p) < MAX_POSITIONS and (not p or p[-1] < MAX_POSITION):
                p.append(min(pos, MAX_POSITION))
                size += 2
            pos += 1
        pos += 1
    return " ".join(f"{_quote(w)}:{','.join(map(str, p))}" for w, p in where.items())


def tsquery(value: str) -> str | None:
    """The phrase of ``value``'s words, the last one as a prefix (FTS5's ``"value"*``); None without a word (or with
    one too long to be indexed: the substring match alone answers then)."""
    ws = words(value)
    if not ws or not all(_fits(w) for w in ws):
        return None
    return " <-> ".join(_quote(w) + (":*" if i == len(ws) - 1 else "") for i, w in enumerate(ws))


def search_text(subject: str, addresses: str, body: str) -> str:
    return f"{subject}\n{addresses}\n{body}"


def _text(value: str) -> tuple[str, list[object]]:
    like = f"{FREE_TEXT_SCAN} ?"
    q = tsquery(value)
    if q is not None:
        return f"(m.search_tsv @@ ?::tsquery OR {like})", [q, _like(value)]
    return like, [_like(value)]


_ADDR_COLS = {"from": ["from_json"], "to": ["to_json"], "cc": ["cc_json"], "bcc": ["bcc_json"],
              "reply-to": ["reply_to_json"],
              "addressed": ["to_json", "from_json", "cc_json", "bcc_json", "reply_to_json"]}


def _term(key: str, value: str) -> tuple[str, list[object]]:
    if key in _ADDR_COLS:
        cols = _ADDR_COLS[key]
        return "(" + " OR ".join(f"m.{c} ILIKE ?" for c in cols) + ")", [_like(value)] * len(cols)
    if key == "subject":
        return "m.subject ILIKE ?", [_like(value)]
    if key == "message-id":
        return "m.message_id ILIKE ?", [_like(value.strip().strip("<>"))]
    if key == "client":  # the envelope keeps "ip:port", "[v6]:port" for IPv6
        ip = value.strip().strip("[]").lower()
        return ("(m.envelope->>'client' ILIKE ? OR m.envelope->>'client' ILIKE ?)",
                [_like(ip)[1:-1] + ":%", "[" + _like(ip)[1:-1] + "]:%"])
    if key == "helo":
        return "m.envelope->>'helo' ILIKE ?", [_like(value)]
    if key == "header":
        return _header(value)
    if key == "auth":
        return _auth(value)
    if key == "tag":
        return "EXISTS (SELECT 1 FROM capture_tags t WHERE t.seq = m.seq AND lower(t.tag) = lower(?))", [value]
    v = value.lower()
    if key == "is" and v in ("read", "unread", "tagged"):
        return {"read": ("m.read", []), "unread": ("NOT m.read", []),
                "tagged": ("EXISTS (SELECT 1 FROM capture_tags t WHERE t.seq = m.seq)", [])}[v]
    if key == "has" and v in ("attachment", "attachments"):
        return "m.attachments > 0", []
    if key == "has" and v in ("inline", "inlines"):
        return "m.inline > 0", []
    try:
        if key == "before":  # inclusive at Created's precision (milliseconds), as Mailpit's ``<=``
            return "floor(m.created * 1000) <= ?", [ms(parse_when(value))]
        if key == "after":
            return "floor(m.created * 1000) >= ?", [ms(parse_when(value))]
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
    name, sep, text = value.partition(":")
    name, text = name.strip().lower(), text.strip()
    base = "EXISTS (SELECT 1 FROM jsonb_array_elements(m.headers) h WHERE h->>0 = ?"
    if not sep or not text:
        return base + ")", [name]
    return base + " AND h->>1 ILIKE ?)", [name, _like(text)]


def _auth(value: str) -> tuple[str, list[object]]:
    v = value.strip().lower().replace("=", ":")
    mech, sep, result = v.partition(":")
    if sep and mech in AUTH_MECHANISMS and result:
        word = f"{mech}:{result}"
    elif v in AUTH_VERDICTS:
        word = f"verdict:{AUTH_VERDICTS[v]}"
    else:
        word = f"verdict:{v}"
    return "(m.auth IS NOT NULL AND m.auth ILIKE ?)", ["% " + _like(word)[1:-1] + " %"]


def compile_query(query: str) -> tuple[str, list[object]]:
    """``query`` → (SQL condition on ``m`` with ``?`` placeholders, parameters); "true" matches everything."""
    parts: list[str] = []
    params: list[object] = []
    for neg, key, value in tokenize(query):
        sql, p = _term(key, value)
        parts.append(f"NOT ({sql})" if neg else sql)
        params += p
    return (" AND ".join(parts) if parts else "true"), params


def mailbox_where(name: str) -> tuple[str, list[object]]:
    """The messages of the capture mailbox ``name``: an envelope recipient or the SMTP AUTH user, any case."""
    n = name.strip().lower()
    return ("(lower(m.username) = ? OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(m.envelope->'rcpts') r "
            "WHERE lower(r) = ?))"), [n, n]
