"""The one header-field reader (courrier/mail/headers.py): fields, obsolete forms, folding, lines that are no field,
and its bounds."""

import time

import pytest

from courrier.mail import headers as H
from courrier.mail.headers import read_header


def names(data: bytes) -> list[str]:
    return [f.name for f in read_header(data).fields]


def test_fields_values_and_offsets_crlf_and_lf():
    for eol in (b"\r\n", b"\n"):
        data = eol.join([b"From: Bob <bob@x.test>", b"Subject: a", b"  folded", b"To: c@d.test", b"", b"body"])
        h = read_header(data)
        assert [f.name for f in h.fields] == ["From", "Subject", "To"]
        subject = h.get("subject")
        assert subject.value == b" a" + eol + b"  folded"
        assert subject.unfolded() == b"a  folded" and subject.text() == "a  folded"
        assert data[subject.start:subject.end] == b"Subject: a" + eol + b"  folded" + eol
        assert data[h.end:] == b"body" and not h.problems and not h.truncated


@pytest.mark.parametrize("line,name", [
    (b"From : Alice <alice@x.test>", "From"),
    (b"From\t: Alice <alice@x.test>", "From"),
    (b"Subject \t :x", "Subject"),
])
def test_obsolete_wsp_before_colon_is_the_same_field(line, name):
    """RFC 5322 §4.5: obs-optional and the obs-* fields allow *WSP between the name and the colon."""
    h = read_header(b"From: carol@x.test\r\n" + line + b"\r\n\r\n")
    assert [f.name for f in h.get_all(name)][-1] == name
    f = h.get_all(name)[-1]
    assert f.obsolete and f.key == name.lower() and not h.problems
    assert len(read_header(b"From: carol@x.test\r\n" + line + b"\r\n").get_all("FROM")) == (2 if name == "From" else 1)


@pytest.mark.parametrize("line,reason", [
    (b"no colon here", H.NO_COLON),
    (b"X Foo: space inside the name", H.BAD_NAME),
    (b"Fr\xc3\xb6m: eight-bit name", H.BAD_NAME),
    (b"Fr\x01om: control character", H.BAD_NAME),
    (b": empty name", H.BAD_NAME),
    (b"From alice@x.test Mon Jan  1 00:00:00 2024", H.BAD_NAME),  # an mbox From_ line is no field
])
def test_lines_that_are_no_field_are_reported_and_reading_goes_on(line, reason):
    h = read_header(b"Subject: s\r\n" + line + b"\r\n continued\r\nFrom: alice@x.test\r\n\r\nbody")
    assert [(p.line, p.reason) for p in h.problems] == [(2, reason)]
    assert names(b"Subject: s\r\n" + line + b"\r\n continued\r\nFrom: alice@x.test\r\n\r\n") == ["Subject", "From"]
    assert h.get("from").text() == "alice@x.test" and h.get("subject").value == b" s"  # continuation skipped


def test_continuation_before_any_field():
    h = read_header(b" leading fold\r\n\tmore\r\nFrom: a@b.test\r\n\r\n")
    assert [(p.line, p.reason) for p in h.problems] == [(1, H.ORPHAN)] and names(b" x\r\nA: b\r\n") == ["A"]


def test_lone_cr_ends_a_line_as_the_stdlib_reads_it():
    """A field after a lone CR is found: the stdlib splits lines at CR too, so it must not be hidden from us."""
    h = read_header(b"X-A: a\rFrom: alice@x.test\r\n\r\n")
    assert [(f.name, f.text()) for f in h.fields] == [("X-A", "a"), ("From", "alice@x.test")]


def test_end_of_header_section():
    assert read_header(b"\r\nbody").end == 2 and read_header(b"\r\nbody").fields == ()
    h = read_header(b"A: 1\r\nB: 2")  # no empty line, no final line break
    assert h.end == 10 and h.get("b").value == b" 2" and not h.truncated
    h = read_header(b"A: 1\r\n\r\nB: 2\r\n")
    assert names(b"A: 1\r\n\r\nB: 2\r\n") == ["A"] and h.end == 8


def test_get_all_is_case_insensitive_and_ordered():
    h = read_header(b"to: a@b\r\nTO: c@d\r\nCc: e@f\r\nTo : g@h\r\n\r\n")
    assert [f.text() for f in h.get_all("To")] == ["a@b", "c@d", "g@h"]
    assert "cc" in h and "bcc" not in h and h.get("BCC") is None
    assert list(h.index()) == ["to", "cc"]


def test_raw_text_is_compat32s_value():
    h = read_header(b"Subject:  caf\xc3\xa9\r\n x\xff\r\n\r\n")
    assert h.get("subject").raw_text() == "caf\u00e9\r\n x\udcff"
    assert h.get("subject").text() == "caf\u00e9 x\ufffd"


def test_size_bound_stops_and_reports():
    data = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(1000)) + b"\r\nbody"
    h = read_header(data, max_size=10_000)
    assert h.truncated and h.problems[-1].reason == H.TOO_LARGE
    assert 10_000 <= h.end < 10_200 and len(h.fields) < 100


def test_line_count_bound():
    h = read_header(b"A: b\r\n" * 50 + b"\r\n", max_lines=10)
    assert h.truncated and len(h.fields) == 10 and h.problems[-1].reason == H.TOO_MANY_LINES
    h = read_header(b"A: b\r\n" + b" c\r\n" * 50 + b"\r\n", max_lines=10)  # continuation lines count too
    assert h.truncated and h.problems[-1].reason == H.TOO_MANY_LINES


@pytest.mark.parametrize("tail", [b"", b"\r\n\r\nbody"])
def test_line_length_bound_reads_no_further_than_the_bound(tail):
    """A 32 MB line without a break: stopped at the bound, in far less time than reading it would take."""
    data = b"A: 1\r\nSubject: " + b"x" * (32 << 20) + tail
    t = time.perf_counter()
    h = read_header(data, max_line=1000)
    assert time.perf_counter() - t < 0.05
    assert h.truncated and h.problems[-1].reason == H.LINE_TOO_LONG and names(data[:6]) == ["A"]
    assert [f.name for f in h.fields] == ["A"] and h.end == 6


def test_default_bounds_cover_ordinary_mail():
    big = b"To: " + b", ".join(b"user%d@example.test" % i for i in range(3000)) + b"\r\n\r\n"  # one 70 KB line
    h = read_header(big)
    assert not h.truncated and len(h.get("to").value) > 60_000


def test_problem_describe_is_one_printable_line():
    [p] = read_header(b"Fr\xc3\xb6m\r\n\r\n").problems
    assert p.describe() == "line 1: no colon ('Fr??m')"
