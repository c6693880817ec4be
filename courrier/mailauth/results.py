"""The ``Authentication-Results:`` header field (RFC 8601): writing ours, recognising forged ones.

One field per message with the spf, dkim and dmarc results, each with a comment saying why (§2.3) and the
properties a reader needs: ``smtp.mailfrom`` / ``smtp.helo`` (§2.7.2), ``header.d``/``header.s``/``header.b``
(RFC 6008) for each signature, ``header.from`` for DMARC (RFC 7489 §11.2). Unsigned mail is ``dkim=none`` (§2.7.1).

§5: a field that claims our authserv-id but arrived with the message is a forgery and must be removed before
delivery; ``claims_authserv_id`` recognises one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from courrier.mailauth.dkim import DKIMResult
from courrier.mailauth.dmarc import DMARCResult
from courrier.mailauth.spf import SPFResult

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`{|}~@]+$")  # RFC 2045 token, plus "@" for addresses (§2.2)


def _value(v: str) -> str:
    """A pvalue: as-is when it is a token (or local-part@domain), else a quoted-string.

    The value comes from the message (d=, s=, MAIL FROM…): whitespace runs — folding included — become one space and
    control characters "?", so nothing a sender writes can break our field's lines (RFC 5322 §2.2)."""
    v = re.sub(r"\s+", " ", v).strip()
    v = "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in v)[:200]
    if v and _TOKEN.match(v):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    """A comment (RFC 5322 §3.2.2): printable ASCII, parentheses escaped, kept short."""
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:120]
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def spf_clause(spf: SPFResult | None) -> str:
    if spf is None:
        return "spf=none (no client IP to check)"
    if spf.identity == "helo":
        prop = f"smtp.helo={_value(spf.domain or spf.sender.rpartition('@')[2])}"
    else:
        prop = f"smtp.mailfrom={_value(spf.sender)}"
    return f"spf={spf.result} {_comment(spf.comment)} {prop}"


def dkim_clauses(results: Sequence[DKIMResult]) -> list[str]:
    if not results:
        return ["dkim=none (message not signed)"]
    out = []
    for r in results:
        props = [f"header.d={_value(r.domain)}" if r.domain else "", f"header.s={_value(r.selector)}" if r.selector
                 else "", f"header.a={_value(r.algorithm)}" if r.algorithm else "",
                 f"header.b={_value(r.b)}" if r.b else ""]
        out.append(" ".join([f"dkim={r.result} {_comment(r.reason)}", *[p for p in props if p]]))
    return out


def dmarc_clause(d: DMARCResult) -> str:
    why = d.reason
    if d.policy:
        why = f"p={d.policy} dis={d.disposition.upper()}: {why}"
    prop = f" header.from={_value(d.from_domain)}" if d.from_domain else ""
    return f"dmarc={d.result} {_comment(why)}{prop}"


def authentication_results(authserv_id: str, spf: SPFResult | None, dkim: Sequence[DKIMResult],
                           dmarc: DMARCResult, linesep: str = "\n") -> str:
    """The whole field, folded one result per line, ending with ``linesep`` (LF for Maildir copies)."""
    clauses = [spf_clause(spf), *dkim_clauses(dkim), dmarc_clause(dmarc)]
    return f"Authentication-Results: {authserv_id};{linesep}\t" + f";{linesep}\t".join(clauses) + linesep


_CFWS = re.compile(r"^(\s|\((?:[^()\\]|\\.)*\))*")


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value (§2.2): the first token, comments skipped."""
    rest = _CFWS.sub("", value.replace("\r", "").replace("\n", " "))
    m = re.match(r'^"((?:[^"\\]|\\.)*)"|^([^\s;()]+)', rest)
    if not m:
        return ""
    return (m.group(1) if m.group(1) is not None else m.group(2)).lower().rstrip(".")


def claims_authserv_id(value: str, ours: str) -> bool:
    return authserv_id(value) == ours.lower().rstrip(".")
