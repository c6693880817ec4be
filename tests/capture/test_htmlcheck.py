"""The HTML check (``courrier/capture/htmlcheck.py``; Mailpit's ``internal/htmlcheck``: ``main.go``, ``html.go``,
``css.go``, ``config.go``, ``platforms.go``) on documents whose answers can be worked out by hand from the
caniemail data."""

from __future__ import annotations

import re
from pathlib import Path

from courrier.capture import htmlcheck as H


def slugs(r):
    return {w["Slug"]: w["Score"]["Found"] for w in r["Warnings"]}


def test_data_is_the_pinned_generated_file():
    script = (Path(__file__).parents[2] / "contrib" / "update-caniemail.py").read_text()
    pinned = re.search(r'PINNED = "([^"]+)"', script).group(1)
    d = H.data()
    assert d["source"] == f"npm caniemail@{pinned}"
    assert len(d["data"]) > 250 and "css-display-flex" in d["by_slug"]


def test_html_tests_scripts_images_and_body():
    html = ('<html><body><script>x()</script><script type="application/ld+json">{}</script><form></form>'
            '<img src="a.WEBP"><img src="b.webp"><img src="data:image/png;base64,AA"><hr></body></html>')
    r = H.check(html)
    found = slugs(r)
    assert found["html-script"] == 1 and found["html-form"] == 1 and found["html-hr"] == 1
    assert found["image-webp"] == 2 and found["image-base64"] == 1 and found["html-body"] == 1
    script = next(w for w in r["Warnings"] if w["Slug"] == "html-script")
    assert script["Score"] == {"Found": 1, "Supported": 0.0, "Partial": 0.0, "Unsupported": 100.0}
    assert r["Warnings"][0]["Slug"] == "html-script"  # the worst first
    # nodes: everything but html/head/meta when the source has </body>, plus scripts
    assert r["Total"]["Nodes"] == 8


def test_scores_follow_the_data():
    r = H.check("<p>x</p><form></form>")  # no </body>: nodes are "body *, script"
    assert r["Total"]["Nodes"] == 2
    form = next(w for w in r["Warnings"] if w["Slug"] == "html-form")
    stats = H.data()["by_slug"]["html-form"]["stats"]
    values = [v for plats in stats.values() for vers in plats.values() for v in vers.values()]
    assert len(form["Results"]) == len(values)
    assert abs(form["Score"]["Supported"] - 100 * values.count("y") / len(values)) < 1e-4
    assert abs(form["Score"]["Unsupported"] - 100 * values.count("n") / len(values)) < 1e-4
    partial = [x for x in form["Results"] if x["Support"] == "partial"]
    assert all(x["Name"].endswith(f"({x['Version']})") for x in form["Results"])
    # total: the worst weighted share of each kind; here only html-form, found once among 2 nodes
    assert abs(r["Total"]["Unsupported"] - form["Score"]["Unsupported"] / 2) < 1e-3
    assert abs(r["Total"]["Supported"] + r["Total"]["Partial"] + r["Total"]["Unsupported"] - 100) < 1e-3
    assert partial == [] or all(x["NoteNumber"] in ("",) or x["NoteNumber"].isdigit() for x in partial)


def test_style_blocks_are_merged_like_premailer():
    html = ("<html><head><style>.row { display: flex; width: 2rem } a:hover { color: red } "
            "@media (max-width: 600px) { .row { display: grid } }</style></head>"
            '<body><div class="row">a</div><div class="row" style="border: 1px solid">b</div></body></html>')
    found = slugs(H.check(html))
    assert found["css-display-flex"] == 2  # from the rule, on both elements
    assert "css-display-grid" not in found  # @media rules stay in the style sheet
    assert found["css-border"] == 1 and found["css-width"] == 2 and found["css-unit-rem"] == 2
    assert found["css-pseudo-class-hover"] == 1 and found["css-at-media"] == 1 and found["html-style"] == 1


def test_platforms_and_markdown():
    p = H.platforms()
    assert "Gmail" in p["android"] and p["android"] == sorted(p["android"])
    assert H.md_inline("Use `<b>` and [docs](https://x.test/a)") == \
        'Use <code>&lt;b&gt;</code> and <a href="https://x.test/a" target="_blank">docs</a>'
    assert H.f32(100 / 3) == 33.333332
