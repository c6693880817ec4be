"""Address lists as IMAP's ENVELOPE and SEARCH show them (RFC 5322 §3.4, obsolete forms §4.4; RFC 3501 §7.4.2).

Why not only the stdlib: ``email.utils.getaddresses`` flattens groups, drops source routes and turns comments inside
an address into a display name; ``email.headerregistry`` decodes display names (ENVELOPE sends them as written —
clients decode RFC 2047 themselves) and keeps routes to itself. Submission still validates From with
``email.headerregistry``; this module writes only what ENVELOPE needs and the stdlib does not give: a tokenizer and a
flat parser, with no recursion (nested comments are counted, not descended into), linear in its input and bounded
(``MAX_VALUE`` characters, ``MAX_ADDRESSES`` addresses per field).

Where RFC 5322 leaves a choice, Dovecot's answers are taken (what IMAP clients meet most; checked against Dovecot 2.3):

- comments are removed, except that a mailbox written without a display name takes its last comment as its name
  (``user@host (Real Name)``, the RFC 822 habit);
- a group ``name: a@b, c@d;`` stays a group; one never closed ends with the field;
- a source route ``<@a,@b:user@host>`` is kept ("@a,@b", the ENVELOPE's adl);
- a quoted local part is unquoted (``"a b"@host`` → ``a b``);
- empty list elements (``a@b,,c@d``, RFC 5322 §4.4 obs-addr-list) and elements of comments only are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.header import decode_header, make_header

MAX_VALUE = 256 * 1024  # characters of one field value parsed at most
MAX_ADDRESSES = 10_000  # addresses (mailboxes and groups) read from one field at most

_ATOM, _QUOTED, _LITERAL, _COMMENT, _SPECIAL = range(5)
_SPECIALS = "<>@,:;"
_STOP = ' \t\r\n"(<>@,:;['


@dataclass(frozen=True, slots=True)
class Mailbox:
    name: str | None  # the display name as written (quotes removed, RFC 2047 words left encoded), or None
    route: str | None  # obsolete source route "@a,@b" (RFC 5322 §4.4 obs-route), or None
    local: str  # "" when missing
    domain: str  # "" when missing

    @property
    def addr_spec(self) -> str:
        return f"{self.local}@{self.domain}" if self.domain else self.local


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    members: tuple[Mailbox, ...]


Address = Mailbox | Group
Token = tuple[int, str]


def tokens(text: str) -> list[Token]:
    """RFC 5322 §3.2 lexical tokens: atoms (dots included), quoted strings (unescaped), domain literals, comments
    (their text, nesting counted), and the specials that shape an address list. Whitespace only separates."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':  # RFC 5322 §3.2.4 quoted-string; an unclosed one ends with the value
            buf = []
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            out.append((_QUOTED, "".join(buf)))
            i += 1
        elif c == "(":  # RFC 5322 §3.2.2 comment, nested comments inside; an unclosed one ends with the value
            buf = []
            depth = 1
            i += 1
            while i < n:
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                    continue
                depth += 1 if ch == "(" else -1 if ch == ")" else 0
                if depth == 0:
                    break
                buf.append(ch)
                i += 1
            out.append((_COMMENT, " ".join("".join(buf).split())))
            i += 1
        elif c == "[":  # RFC 5322 §3.4.1 domain-literal, kept as written
            j = text.find("]", i + 1)
            j = n - 1 if j < 0 else j
            out.append((_LITERAL, text[i:j + 1]))
            i = j + 1
        elif c in _SPECIALS:
            out.append((_SPECIAL, c))
            i += 1
        else:  # atext and ".", and stray characters (")", "]", "\\") read as text rather than refused
            j = i + 1
            while j < n and text[j] not in _STOP:
                j += 1
            out.append((_ATOM, text[i:j]))
            i = j
    return out


def parse(value: str) -> list[Address]:
    """An address-list (RFC 5322 §3.4 and §4.4) → its mailboxes and groups, in order."""
    toks = tokens(value[:MAX_VALUE])
    out: list[Address] = []
    group: str | None = None
    members: list[Mailbox] = []
    cur: list[Token] = []
    in_angle = False
    shaped = False  # cur holds a special ("<", "@", …): a ":" now is no group start (kept as a flag: no rescans)

    def flush() -> None:
        nonlocal cur, in_angle, shaped
        m = _mailbox(cur)
        cur, in_angle, shaped = [], False, False
        if m is not None:
            (members if group is not None else out).append(m)

    def end_group() -> None:
        nonlocal group, members
        if group is not None:
            out.append(Group(group, tuple(members)))
        group, members = None, []

    for i, tok in enumerate(toks):
        if len(out) + len(members) >= MAX_ADDRESSES:
            break
        kind, v = tok
        if kind != _SPECIAL:
            cur.append(tok)
            continue
        if v == "<" and not in_angle:
            in_angle = True
            cur.append(tok)
        elif v == ">" and in_angle:
            in_angle = False
            cur.append(tok)
        elif v == ",":
            if in_angle and toks[i + 1:i + 2] == [(_SPECIAL, "@")]:
                cur.append(tok)  # inside a source route: <@a,@b:user@host>
            else:
                flush()
        elif v == ":":
            if in_angle or group is not None or shaped:
                cur.append(tok)  # the end of a route, or a stray colon
            else:  # RFC 5322 §3.4 group: display-name ":" [group-list] ";"
                group, cur = _phrase(cur), []
        elif v == ";":
            flush()
            end_group()
        else:
            cur.append(tok)
        shaped = bool(cur)
    flush()
    end_group()
    return out


def _text(tok: Token) -> str:
    return tok[1]


def _phrase(toks: list[Token]) -> str:
    """A display name: its words joined by one space, comments left out, quotes removed (RFC 5322 §3.2.5)."""
    parts: list[str] = []
    prev_word = False
    for kind, v in toks:
        if kind == _COMMENT:
            continue
        word = kind != _SPECIAL
        if word and prev_word:
            parts.append(" ")
        parts.append(v)
        prev_word = word
    return "".join(parts)


def _addr_spec(toks: list[Token]) -> tuple[str, str]:
    """local-part "@" domain (RFC 5322 §3.4.1, obsolete CFWS between the pieces, §4.4); comments removed."""
    words = [t for t in toks if t[0] != _COMMENT]
    at = next((i for i, t in enumerate(words) if t == (_SPECIAL, "@")), None)
    if at is None:
        return "".join(map(_text, words)), ""
    local = "".join(map(_text, words[:at]))
    rest = words[at + 1:]
    stop = next((i for i, t in enumerate(rest) if t[0] == _SPECIAL), len(rest))
    return local, "".join(map(_text, rest[:stop]))


def _mailbox(toks: list[Token]) -> Mailbox | None:
    """One mailbox: name-addr (``phrase <route:addr-spec>``) or a bare addr-spec; None for an empty element."""
    if not any(k != _COMMENT for k, _ in toks):
        return None
    lt = next((i for i, t in enumerate(toks) if t == (_SPECIAL, "<")), None)
    if lt is None:
        local, domain = _addr_spec(toks)
        comments = [v for k, v in toks if k == _COMMENT and v]
        return Mailbox(comments[-1] if comments else None, None, local, domain)
    inner = toks[lt + 1:]
    gt = next((i for i, t in enumerate(inner) if t == (_SPECIAL, ">")), len(inner))
    inner = inner[:gt]
    route = None
    words = [t for t in inner if t[0] != _COMMENT]
    if words[:1] == [(_SPECIAL, "@")]:
        colon = next((i for i, t in enumerate(words) if t == (_SPECIAL, ":")), None)
        if colon is not None:  # RFC 5322 §4.4 obs-route: obs-domain-list ":"
            route = "".join(map(_text, words[:colon]))
            words = words[colon + 1:]
    local, domain = _addr_spec(words)
    return Mailbox(_phrase(toks[:lt]) or None, route, local, domain)


def mailboxes(items: list[Address]) -> list[Mailbox]:
    """Every mailbox, group members included."""
    out: list[Mailbox] = []
    for a in items:
        out.extend(a.members if isinstance(a, Group) else (a,))
    return out


def display(items: list[Address], decode: bool = True) -> str:
    """The list written back as one line, as IMAP SEARCH matches it (``Name <@route:user@host>``, groups as
    ``name: a, b;``) — names with RFC 2047 words decoded when ``decode``, comments gone."""
    def one(m: Mailbox) -> str:
        addr = m.addr_spec if m.route is None else f"{m.route}:{m.addr_spec}"
        name = _decode(m.name) if (decode and m.name) else m.name
        return f"{name} <{addr}>" if name else (f"<{addr}>" if m.route else addr)

    parts = []
    for a in items:
        if isinstance(a, Group):
            parts.append(f"{a.name}: " + ", ".join(one(m) for m in a.members) + ";")
        else:
            parts.append(one(a))
    return ", ".join(parts)


def _decode(name: str) -> str:
    """RFC 2047 encoded words → text; the name as written when they do not decode."""
    if "=?" not in name:
        return name
    try:
        return str(make_header(decode_header(name)))
    except Exception:  # the stdlib raises several kinds on broken words; shown as written
        return name
