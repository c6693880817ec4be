"""HTML check: how well email clients support a message's HTML and CSS, scored from caniemail.com's data, as
Mailpit's ``internal/htmlcheck`` computes it (``main.go``, ``html.go``, ``css.go``, ``config.go``,
``platforms.go``).

- The data: ``data/caniemail.json``, generated from a pinned release of the npm package ``caniemail`` by
  ``contrib/update-caniemail.py`` (never edited by hand).
- HTML tests: Mailpit's CSS selectors (``HTML_TESTS``) counted in the parsed document (lexbor, an HTML5 parser like
  Go's); ``<script>`` always fails; ``img[src]`` values matched against the image-format patterns.
- CSS tests: the ``<style>`` rules are merged into each element's ``style`` attribute first (Mailpit runs
  premailer: rules without pseudo-classes, by specificity, inline declarations last), serialised
  ``name:value;…``, then Mailpit's ``[style*="…"]`` selectors and unit patterns run on the result, and its
  at-rule / pseudo-class patterns on the ``<style>`` text. Remote stylesheets are not downloaded (as Mailpit
  with ``--block-remote-css-and-fonts``): a check of received mail never makes the server fetch what a sender
  names.
- Scores: per feature, the share of client versions with "y", partial and "n" support; the total takes, for
  partial and for unsupported, the largest share weighted by how often the feature occurs per node.

Bounded: ``MAX_HTML`` characters of HTML are checked; CSS merging stops after ``MAX_RULES`` rules.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

MAX_HTML = 2 << 20
MAX_RULES = 5000

# Mailpit's config.go, verbatim selectors and patterns.
HTML_TESTS = {
    "html-body": "body",  # checked by </body> in the source: a parsed document always has a body
    "html-object": "object, embed, image, pdf",
    "html-link": "link",
    "html-hr": "hr",
    "html-dialog": "dialog",
    "html-srcset": "[srcset]",
    "html-picture": "picture",
    "html-svg": "svg",
    "html-progress": "progress",
    "html-required": "[required]",
    "html-meter": "meter",
    "html-audio": "audio",
    "html-form": "form",
    "html-input-submit": "submit",
    "html-button-reset": 'button[type="reset"]',
    "html-button-submit": 'submit, button[type="submit"]',
    "html-base": "base",
    "html-input-checkbox": "checkbox",
    "html-input-hidden": '[type="hidden"]',
    "html-input-radio": "radio",
    "html-input-text": 'input[type="text"]',
    "html-video": "video",
    "html-semantics": "article, aside, details, figcaption, figure, footer, header, main, mark, nav, section, "
                      "summary, time",
    "html-select": "select",
    "html-textarea": "textarea",
    "html-anchor-links": 'a[href^="#"]',
    "html-style": "style",
    "html-image-maps": "map, img[usemap]",
}

IMAGE_TESTS = {k: re.compile(v) for k, v in {
    "image-apng": r"(?i)\.apng$", "image-avif": r"(?i)\.avif$", "image-base64": r"(?i)^data:image/",
    "image-bmp": r"(?i)\.bmp$", "image-gif": r"(?i)\.gif$", "image-hdr": r"(?i)\.hdr$",
    "image-heif": r"(?i)\.heif$", "image-ico": r"(?i)\.ico$", "image-mp4": r"(?i)\.mp4$",
    "image-ppm": r"(?i)\.ppm$", "image-svg": r"(?i)\.svg$", "image-tiff": r"(?i)\.tiff?$",
    "image-webp": r"(?i)\.webp$",
}.items()}

_INLINE_PROPS = (
    "accent-color align-items aspect-ratio background-blend-mode background-clip background-image "
    "background-origin background-position background-repeat background-size block-inline-size border-image "
    "border-radius box-shadow box-sizing caption-side clip-path column-count column-layout-properties "
    "conic-gradient direction display filter flex-direction flex-wrap float font-kerning font-weight font gap "
    "grid-template hyphens inline-size intrinsic-size justify-content letter-spacing line-height "
    "list-style-image list-style-position list-style margin-inline-block margin-inline margin max-block-size "
    "max-height max-width min-height min-inline-size min-width mix-blend-mode modern-color object-fit "
    "object-position opacity outline-offset outline overflow-wrap overflow padding-inline-block position "
    "radial-gradient table-layout tab-size text-align-last text-align text-decoration-color "
    "text-decoration-thickness text-decoration text-emphasis-position text-emphasis text-indent text-overflow "
    "text-shadow text-transform text-underline-offset transform variables visibility white-space word-break "
    "writing-mode z-index").split()
CSS_INLINE_TESTS: dict[str, str] = {f"css-{p}": f'[style*="{p}:"]' for p in _INLINE_PROPS}
CSS_INLINE_TESTS.update({
    "css-background-color": '[style*="background-color:"], [bgcolor]',
    "css-background": '[style*="background:"], [background]',
    "css-border-inline-block-individual": '[style*="border-inline:"]',
    "css-border": '[style*="border:"], [border]',
    "css-display-flex": '[style*="display:flex"]',
    "css-display-grid": '[style*="display:grid"]',
    "css-display-none": '[style*="display:none"]',
    "css-height": '[style*="height:"], [height]',
    "css-important": '[style*="!important"]',
    "css-margin-block-start-end": '[style*="margin-block-start:"], [style*="margin-block-end:"]',
    "css-margin-inline-start-end": '[style*="margin-inline-start:"], [style*="margin-inline-end:"]',
    "css-padding-block-start-end": '[style*="padding-block-start:"], [style*="padding-block-end:"]',
    "css-padding-inline-start-end": '[style*="padding-inline-start:"], [style*="padding-inline-end:"]',
    "css-padding": '[style*="padding:"], [padding]',
    "css-rgb": '[style*="rgb("]',
    "css-rgba": '[style*="rgba("]',
    "css-scroll-snap": '[style*="roll-snap:"]',
    "css-unit-calc": '[style*="calc(:"]',
    "css-width": '[style*="width:"], [width]',
})

CSS_TEXT_TESTS = {k: re.compile(v) for k, v in {
    "css-at-font-face": r"(?mi)@font\-face\s+?{", "css-at-import": r"(?mi)@import\s",
    "css-at-keyframes": r"(?mi)@keyframes\s", "css-at-media": r"(?mi)@media\s?\(",
    "css-at-supports": r"(?mi)@supports\s?\(", "css-pseudo-class-active": r":active",
    "css-pseudo-class-checked": r":checked", "css-pseudo-class-first-child": r":first\-child",
    "css-pseudo-class-first-of-type": r":first\-of\-type", "css-pseudo-class-focus": r":focus",
    "css-pseudo-class-has": r":has", "css-pseudo-class-hover": r":hover",
    "css-pseudo-class-lang": r":lang\s?\(", "css-pseudo-class-last-child": r":last\-child",
    "css-pseudo-class-last-of-type": r":last\-of\-type", "css-pseudo-class-link": r":link",
    "css-pseudo-class-not": r":not(\s+)?\(", "css-pseudo-class-nth-child": r":nth\-child(\s+)?\(",
    "css-pseudo-class-nth-last-child": r":nth\-last\-child(\s+)?\(",
    "css-pseudo-class-nth-last-of-type": r":nth\-last\-of\-type(\s+)?\(",
    "css-pseudo-class-nth-of-type": r":nth\-of\-type(\s+)?\(",
    "css-pseudo-class-only-child": r":only\-child(\s+)?\(",
    "css-pseudo-class-only-of-type": r":only\-of\-type(\s+)?\(", "css-pseudo-class-target": r":target",
    "css-pseudo-class-visited": r":visited", "css-pseudo-element-after": r":after",
    "css-pseudo-element-before": r":before", "css-pseudo-element-first-letter": r"::first\-letter",
    "css-pseudo-element-first-line": r"::first\-line", "css-pseudo-element-marker": r"::marker",
    "css-pseudo-element-placeholder": r"::placeholder",
}.items()}

CSS_UNIT_TESTS = {k: re.compile(v) for k, v in {
    "css-unit-ch": r"\b\d+ch\b", "css-unit-initial": r":\s?initial\b", "css-unit-rem": r"\b\d+rem\b",
    "css-unit-vh": r"\b\d+vh\b", "css-unit-vmax": r"\b\d+vmax\b", "css-unit-vmin": r"\b\d+vmin\b",
    "css-unit-vw": r"\b\d+vw\b",
}.items()}

_NOTE = re.compile(r" #(\d)+$")  # Mailpit's noteMatch (the last digit is what Go's submatch keeps)
_BODY_END = re.compile(r"</body>", re.I)


@cache
def data() -> dict[str, Any]:
    raw = (resources.files("courrier.capture") / "data" / "caniemail.json").read_text(encoding="utf-8")
    d = json.loads(raw)
    d["by_slug"] = {x["slug"]: x for x in d["data"]}
    return d


def f32(x: float) -> float:
    """The value as Go's float32 JSON shows it: the shortest decimal that is the same float32."""
    target = struct.pack("<f", x)
    x = struct.unpack("<f", target)[0]  # the float32's exact value, rounded from
    for digits in range(1, 10):
        v = float(f"{x:.{digits}g}")
        if struct.pack("<f", v) == target:
            return v
    return x


def md_inline(s: str) -> str:
    """caniemail's descriptions and notes are one-line Markdown: code, links, strong, emphasis. As Mailpit's
    gomarkdown output (links open in a new tab), without the surrounding <p>."""
    out = escape(s.strip(), quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                 lambda m: f'<a href="{m.group(2).replace(chr(34), "%22")}" target="_blank">{m.group(1)}</a>', out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?!\w)", r"<em>\1</em>", out)
    return out


def warning(slug: str, found: int) -> dict[str, Any] | None:
    """Mailpit's ``getTest``: the feature's results per client version and its support shares."""
    d = data()
    f = d["by_slug"].get(slug)
    if f is None:
        return None
    nice = d["nicenames"]
    results = []
    y = n = p = 0
    for family, platforms in (f.get("stats") or {}).items():
        for platform, versions in platforms.items():
            for version, support in versions.items():
                r = {"Name": f"{nice['family'].get(family, '')} {nice['platform'].get(platform, '')} ({version})",
                     "Platform": platform, "Family": family, "Version": version, "Support": "", "NoteNumber": ""}
                if support == "y":
                    y += 1
                    r["Support"] = "yes"
                elif support == "n":
                    n += 1
                    r["Support"] = "no"
                else:
                    p += 1
                    r["Support"] = "partial"
                    m = _NOTE.search(str(support))
                    if m:
                        r["NoteNumber"] = m.group(1)
                results.append(r)
    total = y + n + p
    return _warning(slug, f["title"], md_inline(f.get("description") or ""), f.get("url") or "",
                    f.get("category") or "", list(f.get("tags") or []), results,
                    {k: md_inline(v) for k, v in (f.get("notes_by_num") or {}).items()}, found,
                    *((y / total * 100, p / total * 100, n / total * 100) if total else (0.0, 0.0, 0.0)))


def _warning(slug: str, title: str, description: str, url: str, category: str, tags: list[str],
             results: list[dict[str, str]], notes: dict[str, str], found: int, supported: float, partial: float,
             unsupported: float) -> dict[str, Any]:
    return {"Slug": slug, "Title": title, "Description": description, "URL": url, "Category": category,
            "Tags": tags, "Keywords": "", "Results": results, "NotesByNumber": notes,
            "Score": {"Found": found, "Supported": f32(supported), "Partial": f32(partial),
                      "Unsupported": f32(unsupported)}}


def platforms() -> dict[str, list[str]]:
    """Every platform with the client families tested on it (Mailpit's ``Platforms``)."""
    d = data()
    out: dict[str, set[str]] = {}
    for f in d["data"]:
        for family, plats in (f.get("stats") or {}).items():
            for platform in plats:
                out.setdefault(platform, set()).add(d["nicenames"]["family"].get(family, ""))
    return {k: sorted(v) for k, v in out.items()}


def _unique(nodes: list[LexborNode]) -> list[LexborNode]:
    seen: set[int] = set()
    out = []
    for n in nodes:
        if n.mem_id not in seen:
            seen.add(n.mem_id)
            out.append(n)
    return out


def _count(tree: LexborHTMLParser, selector: str) -> int:
    try:
        return len(_unique(tree.css(selector)))
    except Exception:  # a selector lexbor cannot read finds nothing
        return 0


@dataclass
class _Rule:
    selector: str
    declarations: list[tuple[str, str]]
    specificity: tuple[int, int, int]
    order: int = field(default=0)


def _declarations(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(";"):
        name, sep, value = part.partition(":")
        if sep and name.strip() and value.strip():
            out.append((name.strip().lower(), " ".join(value.split())))
    return out


def _specificity(sel: str) -> tuple[int, int, int]:
    s = re.sub(r"\[[^\]]*\]", " [a] ", sel)
    return (s.count("#"), s.count(".") + s.count("[a]"), len(re.findall(r"(?:^|[\s>+~])[a-zA-Z][\w-]*", s)))


def _rules(css: str) -> list[_Rule]:
    """Top-level style rules of a style sheet (at-rules and their blocks skipped, as premailer leaves them)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: list[_Rule] = []
    i, n = 0, len(css)
    while i < n and len(rules) < MAX_RULES:
        open_ = css.find("{", i)
        if open_ < 0:
            break
        prelude = css[i:open_].strip()
        depth, j = 1, open_ + 1
        while j < n and depth:
            depth += {"{": 1, "}": -1}.get(css[j], 0)
            j += 1
        body = css[open_ + 1:j - 1]
        i = j
        semi = prelude.rfind(";")  # an @import …; or @charset …; before this rule
        prelude = prelude[semi + 1:].strip()
        if not prelude or prelude.startswith("@"):
            continue
        decls = _declarations(body)
        for sel in prelude.split(","):
            sel = sel.strip()
            if sel and ":" not in sel:  # pseudo-classes and -elements cannot be inlined
                rules.append(_Rule(sel, decls, _specificity(sel), len(rules)))
    return rules


def _merge_styles(tree: LexborHTMLParser, css: str) -> None:
    """premailer's job: each element's ``style`` becomes the declarations of the rules that match it (by
    specificity, then source order) followed by its own, one value per property, written ``name:value;``."""
    merged: dict[int, tuple[LexborNode, dict[str, str]]] = {}
    for rule in sorted(_rules(css), key=lambda r: (r.specificity, r.order)):
        try:
            nodes = tree.css(rule.selector)
        except Exception:
            continue
        for node in nodes:
            props = merged.setdefault(node.mem_id, (node, {}))[1]
            for k, v in rule.declarations:
                props[k] = v
    for node in _unique(tree.css("[style]")):
        props = merged.setdefault(node.mem_id, (node, {}))[1]
        for k, v in _declarations(node.attributes.get("style") or ""):
            props[k] = v
    for node, props in merged.values():
        if props:
            node.attrs["style"] = ";".join(f"{k}:{v}" for k, v in props.items()) + ";"


def check(html: str) -> dict[str, Any]:
    """Mailpit's ``RunTests``: {"Warnings", "Platforms", "Total"}."""
    html = html[:MAX_HTML]
    tree = LexborHTMLParser(html)
    has_body = bool(_BODY_END.search(html))
    nodes = _count(tree, "*:not(html):not(head):not(meta), script" if has_body else "body *, script")
    warnings: list[dict[str, Any]] = []
    tests = 0

    # html.go
    scripts = _count(tree, 'script:not([type="application/ld+json"]):not([type="application/json"])')
    if scripts:
        warnings.append(_warning("html-script", "<script> element", "JavaScript is not supported in any email "
                                 "client.", "", "html", [], [], {}, scripts, 0.0, 0.0, 100.0))
        tests += 1
    for slug, selector in HTML_TESTS.items():
        tests += 1
        found = (1 if has_body else 0) if slug == "html-body" else _count(tree, selector)
        w = warning(slug, found) if found else None
        if w is not None:
            if slug != "html-body":
                tests += 1  # Mailpit counts a found HTML test twice
            warnings.append(w)
    images: dict[str, int] = {}
    tests += len(IMAGE_TESTS)
    for img in tree.css("img[src]"):
        src = img.attributes.get("src") or ""
        for slug, pattern in IMAGE_TESTS.items():
            if pattern.search(src):
                images[slug] = images.get(slug, 0) + 1
    for slug, found in images.items():
        w = warning(slug, found)
        if w is not None:
            warnings.append(w)

    # css.go
    css_text = "".join(n.text(deep=True) for n in tree.css("style"))
    merged = LexborHTMLParser(html)
    _merge_styles(merged, css_text)
    for slug, selector in CSS_INLINE_TESTS.items():
        tests += 1
        found = _count(merged, selector)
        w = warning(slug, found) if found else None
        if w is not None:
            warnings.append(w)
    styles = [n.attributes.get("style") or "" for n in _unique(merged.css("[style]"))]
    for slug, pattern in CSS_UNIT_TESTS.items():
        tests += 1
        found = sum(len(pattern.findall(s)) for s in styles)
        w = warning(slug, found) if found else None
        if w is not None:
            warnings.append(w)
    for slug, pattern in CSS_TEXT_TESTS.items():
        tests += 1
        found = len(pattern.findall(css_text))
        w = warning(slug, found) if found else None
        if w is not None:
            warnings.append(w)

    # main.go: the total, and the worst first
    per = max(nodes, 1)
    partial = max((w["Score"]["Partial"] * w["Score"]["Found"] / per for w in warnings
                   if w["Score"]["Found"] and w["Score"]["Partial"] > 0), default=0.0)
    unsupported = max((w["Score"]["Unsupported"] * w["Score"]["Found"] / per for w in warnings
                       if w["Score"]["Found"] and w["Score"]["Unsupported"] > 0), default=0.0)
    warnings.sort(key=lambda w: -(w["Score"]["Unsupported"] + w["Score"]["Partial"]) * w["Score"]["Found"] / per)
    return {"Warnings": warnings, "Platforms": platforms(),
            "Total": {"Tests": tests, "Nodes": nodes, "Supported": f32(100 - partial - unsupported),
                      "Partial": f32(partial), "Unsupported": f32(unsupported)}}
