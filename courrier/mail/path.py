"""Envelope addresses and ESMTP parameters (RFC 5321 §4.1.2, RFC 6531 for UTF-8).

Parsing is strict about structure and generous about content: a quoted local part, a UTF-8 local part (only when the
client said SMTPUTF8) and a source route (RFC 5321 §4.1.1.3: accepted, then ignored) all parse; what to do with the
address is the policy's business, never this module's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class AddressError(ValueError):
    """The path or address is syntactically wrong; the text says why."""


@dataclass(frozen=True)
class Address:
    local: str
    domain: str  # "" only for the null reverse-path; may be a domain literal "[1.2.3.4]"

    def __str__(self) -> str:
        if not self.local and not self.domain:
            return ""
        return f"{quote_local(self.local)}@{self.domain}"

    @property
    def is_null(self) -> bool:
        return not self.local and not self.domain

    @property
    def is_domain_literal(self) -> bool:
        return self.domain.startswith("[")

    @property
    def needs_smtputf8(self) -> bool:
        return not str(self).isascii()

    def base(self) -> Address:
        """``user+tag@domain`` → ``user@domain`` (subaddressing, RFC 5233)."""
        if "+" in self.local and not self.local.startswith("+"):
            return Address(self.local.split("+", 1)[0], self.domain)
        return self

    @property
    def tag(self) -> str | None:
        if "+" in self.local and not self.local.startswith("+"):
            return self.local.split("+", 1)[1] or None
        return None


NULL = Address("", "")

# RFC 5321 §4.1.2 atext (RFC 5322 §3.2.3) plus UTF-8 (RFC 6531 §3.3), written as negated classes: character
# ranges up to U+10FFFF make Python's regex compiler slow (≈0.1 s per import), negations do not.
_ATEXT = r"[^\x00-\x20\x7f()<>\[\]:;@\\,.\"]"
_DOT_ATOM = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")
_LETDIG = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # letters, digits, any non-ASCII
_LDH = r"[^\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # the same plus hyphen
_LABEL = rf"{_LETDIG}(?:{_LDH}*{_LETDIG})?"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_ADDR_LITERAL = re.compile(r"^\[(?:IPv6:[0-9A-Fa-f:.]+|[0-9.]+|[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+)\]$")
_QSTRING = re.compile(r'^"((?:[^\x00-\x1f\x22\x5c\x7f]|\\[\x20-\x7e])*)"$')


def quote_local(local: str) -> str:
    """The local part as it must be written: dot-atom when possible, else a quoted string."""
    if _DOT_ATOM.match(local):
        return local
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_at(addr: str) -> tuple[str, str]:
    """Splits at the last @ that is outside a quoted local part."""
    if addr.startswith('"'):
        i, escaped = 1, False
        while i < len(addr):
            ch = addr[i]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                break
            i += 1
        else:
            raise AddressError("unterminated quoted local part")
        rest = addr[i + 1:]
        if not rest.startswith("@"):
            raise AddressError("expected @ after the quoted local part")
        return addr[: i + 1], rest[1:]
    local, at, domain = addr.rpartition("@")
    if not at:
        raise AddressError("missing @domain")
    return local, domain


def stored_address(text: str) -> Address:
    """An address this program wrote itself (``str(Address)``, e.g. in the outbound spool) read back as it was:
    the local part unquoted, the domain's case kept, no syntax check (it was checked when it was received).
    ``""`` is the null reverse-path; AddressError only when there is no ``@`` at all."""
    if not text:
        return NULL
    local_raw, domain = _split_at(text)
    m = _QSTRING.match(local_raw)
    return Address(re.sub(r"\\(.)", r"\1", m.group(1)) if m else local_raw, domain)


def parse_address(text: str, *, utf8: bool = True) -> Address:
    """``local@domain`` (no angle brackets) → Address."""
    if not text:
        raise AddressError("empty address")
    if len(text) > 254 + 2:
        raise AddressError("address too long")
    if not utf8 and not text.isascii():
        raise AddressError("non-ASCII address without SMTPUTF8")
    local_raw, domain = _split_at(text)
    if not local_raw:
        raise AddressError("empty local part")
    m = _QSTRING.match(local_raw)
    if m:
        local = re.sub(r"\\(.)", r"\1", m.group(1))
    elif _DOT_ATOM.match(local_raw):
        local = local_raw
    else:
        raise AddressError(f"bad local part {local_raw!r}")
    if len(local.encode()) > 64:
        raise AddressError("local part longer than 64 octets (RFC 5321 §4.5.3.1.1)")
    if not (_DOMAIN.match(domain) or _ADDR_LITERAL.match(domain)):
        raise AddressError(f"bad domain {domain!r}")
    if len(domain.encode()) > 255:
        raise AddressError("domain too long")
    return Address(local, domain if domain.startswith("[") else domain.lower())


_PATH = re.compile(r"^<(.*)>$")
_SOURCE_ROUTE = re.compile(r"^@[^:,]+(,@[^:,]+)*:")
_PARAM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([^\x00-\x20\x3d\x7f]+))?$")


def split_path_and_params(arg: str, keyword: str) -> tuple[str, list[str]]:
    """``FROM:<a@b> SIZE=10`` → ("<a@b>", ["SIZE=10"]). Tolerates a space after the colon (common in the wild)."""
    if not arg[: len(keyword) + 1].upper() == keyword + ":":
        raise AddressError(f"expected {keyword}:<address>")
    rest = arg[len(keyword) + 1:].lstrip(" ")
    if not rest.startswith("<"):
        # RFC 5321 requires brackets; accept a bare address without spaces, as Postfix does in its default mode.
        path, _, params = rest.partition(" ")
        if not path:
            raise AddressError(f"expected {keyword}:<address>")
        return "<" + path + ">", params.split()
    end = _closing_bracket(rest)
    return rest[: end + 1], rest[end + 1:].split()


def _closing_bracket(s: str) -> int:
    in_quote, escaped = False, False
    for i, ch in enumerate(s):
        if escaped:
            escaped = False
        elif ch == "\\" and in_quote:
            escaped = True
        elif ch == '"':
            in_quote = not in_quote
        elif ch == ">" and not in_quote:
            return i
    raise AddressError("missing closing >")


def parse_path(path: str, *, allow_null: bool, utf8: bool) -> Address:
    """``<a@b>`` → Address; ``<>`` → NULL when allowed. Source routes are dropped (RFC 5321 §4.1.1.3)."""
    m = _PATH.match(path)
    if not m:
        raise AddressError("address must be in angle brackets")
    inner = m.group(1)
    if inner == "":
        if allow_null:
            return NULL
        raise AddressError("null address not allowed here")
    inner = _SOURCE_ROUTE.sub("", inner, count=1)
    return parse_address(inner, utf8=utf8)


def parse_params(params: list[str]) -> dict[str, str | None]:
    """ESMTP parameters → {UPPER-KEYWORD: value or None}; duplicates are an error."""
    out: dict[str, str | None] = {}
    for p in params:
        m = _PARAM.match(p)
        if not m:
            raise AddressError(f"bad parameter {p!r}")
        key = m.group(1).upper()
        if key in out:
            raise AddressError(f"duplicate parameter {key}")
        out[key] = m.group(2)
    return out


def xtext_decode(s: str) -> str:
    """RFC 3461 §4: ``+HH`` escapes in ENVID and ORCPT. xtext is a string of octets: the escapes are bytes, read
    back as UTF-8 (an invalid sequence is kept as surrogate escapes rather than refused)."""
    if re.search(r"\+(?![0-9A-F]{2})", s):
        raise AddressError("bad xtext")
    out = bytearray()
    for plain, hexpair in re.findall(r"([^+]+)|\+([0-9A-F]{2})", s):
        out += plain.encode("utf-8", "surrogateescape") if plain else bytes([int(hexpair, 16)])
    return out.decode("utf-8", "surrogateescape")


def xtext_encode(s: str) -> str:
    """The inverse of ``xtext_decode``: every octet outside ``!``..``~``, and ``+`` and ``=``, as ``+HH``."""
    return "".join(chr(b) if 33 <= b <= 126 and b not in b"+=" else f"+{b:02X}"
                   for b in s.encode("utf-8", "surrogateescape"))
