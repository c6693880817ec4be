"""nh3 sanitizing of captured HTML and the CSP of the rendered message."""

from courrier.web import sanitize


def test_scripts_handlers_and_javascript_urls_are_removed():
    dirty = ('<p style="color:red" onclick="x()">hi</p><script>alert(1)</script><img src="a.png" onerror="x()">'
             '<a href="javascript:alert(1)">j</a><a href="https://ok.test/">ok</a><iframe src="https://e.test">'
             '</iframe><form action="https://e.test"><input name=p></form><style>p{color:blue}</style>')
    clean = sanitize.clean(dirty)
    for bad in ("<script", "alert(1)", "onerror", "onclick", "javascript:", "<iframe", "<form", "<input"):
        assert bad not in clean, bad
    assert '<p style="color:red">hi</p>' in clean and "<style>p{color:blue}</style>" in clean
    assert '<a href="https://ok.test/" target="_blank" rel="noopener noreferrer">ok</a>' in clean


def test_cid_references_point_at_parts():
    html = '<img src="cid:logo@x"><img src=\'cid:unknown\'>'
    out = sanitize.rewrite_cids(html, {"logo@x": "/api/v1/message/M/part/2"})
    assert out == '<img src="/api/v1/message/M/part/2"><img src=\'cid:unknown\'>'


def test_csp_blocks_scripts_always_and_remote_loads_unless_asked():
    strict, loose = sanitize.csp(False), sanitize.csp(True)
    assert "script-src 'none'" in strict and "script-src 'none'" in loose
    assert "http:" not in strict and "https:" not in strict
    assert "img-src 'self' data: http: https:" in loose
    assert "script-src 'none'" in sanitize.VIEW_CSP


def test_meta_refresh_is_removed_by_the_sanitizer_and_the_view():
    dirty = ('<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/">'
             '<META HTTP-EQUIV=Refresh CONTENT="1; URL=https://evil.example/2"><meta charset="utf-8"></head>'
             '<body><p>hello</p></body></html>')
    clean = sanitize.clean(dirty)
    assert "<meta" not in clean.lower() and "evil.example" not in clean and "<p>hello</p>" in clean
    view = sanitize.drop_meta_refresh(dirty)
    assert "refresh" not in view.lower() and view.count("<meta") == 1 and "<p>hello</p>" in view
    # quoted ">" inside an attribute does not hide the tag (tokenized as a browser does)
    tricky = '<meta content="0;url=//evil.example" x=">" http-equiv="refresh"><p>kept</p>'
    assert sanitize.drop_meta_refresh(tricky) == "<p>kept</p>"
    assert sanitize.drop_meta_refresh("<p>no refresh here</p>") == "<p>no refresh here</p>"


def test_view_csp_is_a_sandbox_without_scripts_forms_or_refresh():
    directives = {d.split()[0]: d.split()[1:] for d in (x.strip() for x in sanitize.VIEW_CSP.split(";")) if d}
    assert "sandbox" in directives and "allow-scripts" not in directives["sandbox"]
    assert "allow-same-origin" not in directives["sandbox"] and "allow-top-navigation" not in directives["sandbox"]
    assert directives["default-src"] == ["'none'"] and directives["script-src"] == ["'none'"]
    assert directives["form-action"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert "'unsafe-inline'" in directives["style-src"] and "https:" in directives["img-src"]
