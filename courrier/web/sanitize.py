"""Making a captured HTML message safe to look at.

Captured mail is hostile input: it may carry ``<script>``, ``onerror=`` handlers, or tracking pixels that tell the
sender when (and from where) the message was opened. Two independent layers keep it inert:

1. ``clean()`` runs the HTML through nh3 (the Rust ``ammonia`` sanitizer): no scripts, no event handlers, no
   ``javascript:`` URLs, no forms or frames. Inline ``cid:`` images are pointed at the part endpoint.
2. ``csp()`` is the Content-Security-Policy of the page that shows it (inside a sandboxed iframe without
   ``allow-scripts``): ``script-src 'none'`` always, and remote images, styles and fonts only when the user asks.

``<meta>`` is not kept at all: ``<meta http-equiv="refresh" content="0;url=…">`` navigates the viewer away (to a
phishing page, or to a tracker that learns the message was opened) without any script.

``/view/{ID}.html`` (Mailpit's raw view, for UI tests) keeps the message's HTML as sent, but without meta refresh
(``drop_meta_refresh``) and under ``VIEW_CSP``: CSP ``sandbox`` gives the page an opaque origin (it can reach
nothing of the inspector) and, without ``allow-scripts``, also turns declarative refresh off (HTML § "sandboxed
automatic features browsing context flag"); ``form-action 'none'`` stops a form from posting what the user types.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) | {"style", "font", "tfoot", "html", "body", "head", "title", "main",
                                  "section", "address", "big"}
_GENERIC = {"style", "class", "id", "dir", "lang", "title", "align", "valign", "bgcolor", "width", "height",
            "border", "cellpadding", "cellspacing", "color", "face", "size", "role"}
_ATTRS: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRS.setdefault("img", set()).update({"src", "alt", "width", "height", "title"})
_ATTRS["a"] = {"href", "hreflang", "name"}
_ATTRS["*"] = _GENERIC
_CID = re.compile(r"""(src\s*=\s*["']?)cid:([^"'\s>]+)""", re.I)


def rewrite_cids(html: str, cid_urls: dict[str, str]) -> str:
    """``src="cid:x"`` → the URL of the part whose Content-ID is x (RFC 2392), when there is one."""

    def sub(m: re.Match[str]) -> str:
        url = cid_urls.get(m.group(2))
        return m.group(1) + url if url else m.group(0)

    return _CID.sub(sub, html)


def clean(html: str) -> str:
    """Sanitized HTML: keeps layout and inline styles, drops anything that runs or submits."""
    return nh3.clean(
        html, tags=_TAGS, clean_content_tags={"script", "noscript", "iframe", "object", "embed", "template"},
        attributes=_ATTRS, url_schemes={"http", "https", "mailto", "tel", "data", "cid"},
        link_rel="noopener noreferrer", set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def csp(remote: bool) -> str:
    """The CSP of a rendered message: never scripts; remote loads only when ``remote``."""
    extra = " http: https:" if remote else ""
    return ("default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; form-action 'none'; "
            f"base-uri 'none'; img-src 'self' data:{extra}; style-src 'self' 'unsafe-inline'{extra}; "
            f"font-src 'self' data:{extra}; media-src 'self'{extra}")


# The CSP of Mailpit-compatible /view/{ID}.html: the message as sent (remote images and styles load, as in
# Mailpit), sandboxed: no script, no refresh, no form submission, no plugin, no frame, no fetch.
VIEW_CSP = ("sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
            "img-src 'self' data: http: https:; style-src 'self' 'unsafe-inline' http: https:; "
            "font-src 'self' data: http: https:; media-src 'self' data: http: https:; script-src 'none'; "
            "object-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'")


class _MetaRefreshFinder(HTMLParser):
    """Where the ``<meta http-equiv="refresh">`` tags are, tokenized as a browser does (quotes, case, ``/``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.spans: list[tuple[int, int, int]] = []  # (line, column, length of the tag's text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta" and any(k == "http-equiv" and (v or "").strip().lower() == "refresh" for k, v in attrs):
            line, col = self.getpos()
            self.spans.append((line, col, len(self.get_starttag_text() or "")))

    handle_startendtag = handle_starttag


def drop_meta_refresh(html: str) -> str:
    """``html`` without its ``<meta http-equiv="refresh">`` tags, every other character kept."""
    if "refresh" not in html.lower():
        return html
    finder = _MetaRefreshFinder()
    try:
        finder.feed(html)
        finder.close()
    except Exception:  # noqa: BLE001 — unparsable: the CSP sandbox still turns refresh off
        return html
    starts = [0]
    for line in html.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    out, pos = [], 0
    for line, col, length in finder.spans:
        begin = starts[line - 1] + col
        out.append(html[pos:begin])
        pos = begin + length
    return "".join(out) + html[pos:]
