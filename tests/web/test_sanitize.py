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
