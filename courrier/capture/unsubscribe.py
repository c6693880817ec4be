"""``List-Unsubscribe`` (RFC 2369 §3.2, RFC 8058) checked as Mailpit's ``internal/tools/listunsubscribe.go`` does:
the links it finds and, in one string, what is wrong with the field — clients show ``ListUnsubscribe.Errors``
to tell a sender its field will be ignored by mailbox providers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_LINK = re.compile(r"<(.*?)>")
_JOIN = re.compile(r">(.*?)<", re.S)
_JOIN_OK = re.compile(r"\s*,\s*")
_MAILTO = re.compile(r"mailto:[a-zA-Z0-9]")
_HTTP = re.compile(r"(?i)https?://[a-zA-Z0-9]")
_COMMENT = re.compile(r"\(.*?\)", re.S)


def parse(value: str) -> tuple[list[str], str]:
    """(links, errors): errors "" when the field is well formed; at most one mailto: and one http(s) link."""
    v = value.strip()
    for c in _COMMENT.findall(v):  # RFC 2369 §2: comments may follow each URL
        v = v.replace(c, "").strip()
    if not _LINK.search(v):
        return [], f'"{v}" no valid unsubscribe links found'
    if not (v.startswith("<") and v.endswith(">")):
        return [], f'"{v}" should be enclosed in <>'
    matches = _LINK.findall(v)
    if len(matches) > 2:
        return [], f'"{v}" should include a maximum of one email and one HTTP link'
    if any(not _JOIN_OK.fullmatch(g) for g in _JOIN.findall(v)):
        return [], f'"{v}" <> should be split with a comma and optional spaces'
    links: list[str] = []
    errors: list[str] = []
    seen = {"mailto": False, "http": False}
    for r in matches:
        if re.search(r"\s", r):
            errors.append(f'"{r}" should not contain spaces')
            continue
        kind = "mailto" if _MAILTO.match(r) else "http" if _HTTP.match(r) else ""
        if not kind:
            errors.append(f'"{r}" should start with either http(s):// or mailto:')
            continue
        if seen[kind]:
            errors.append(f'"{r}" should only contain one ' + ("mailto:" if kind == "mailto" else "HTTP link"))
            continue
        seen[kind] = True
        try:
            urlsplit(r)
        except ValueError as e:
            errors.append(str(e))
            continue
        links.append(r)
    return links, ", ".join(errors)
