"""Making a captured HTML message safe to look at.

Captured mail is hostile input: it may carry ``<script>``, ``onerror=`` handlers, or tracking pixels that tell the
sender when (and from where) the message was opened. Two independent layers keep it inert:

1. ``clean()`` runs the HTML through nh3 (the Rust ``ammonia`` sanitizer): no scripts, no event handlers, no
   ``javascript:`` URLs, no forms or frames. Inline ``cid:`` images are pointed at the part endpoint.
2. ``csp()`` is the Content-Security-Policy of the page that shows it (inside a sandboxed iframe without
   ``allow-scripts``): ``script-src 'none'`` always, and remote images, styles and fonts only when the user asks.
"""

from __future__ import annotations

import re

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) | {"style", "font", "tfoot", "html", "body", "head", "title", "meta", "main",
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


# The CSP of Mailpit-compatible /view/{ID}.html: the message as sent, but no script runs.
VIEW_CSP = ("default-src 'self' data: http: https:; script-src 'none'; object-src 'none'; frame-src 'none'; "
            "style-src 'self' 'unsafe-inline' http: https:")
