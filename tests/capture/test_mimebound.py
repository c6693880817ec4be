"""Bounded MIME walking (issue 11, items 11 and 15): every walker of capture and web parses through
``capture.mimebound``; no message makes one recurse without bound, fail on a charset, or stop indexing."""

from __future__ import annotations

import email.policy
import json
from email.message import Message
from pathlib import Path

import pytest

from courrier.capture import parse as P
from courrier.capture.envelope import CapturedEnvelope
from courrier.capture.mimebound import MAX_DEPTH, MAX_PARTS, MimeLimitError, message_from_bytes, parse_bounded
from courrier.capture.search import QueryError, compile_query, parse_size
from courrier.capture.store import CaptureStore, build_row, trace_fields
from courrier.config import CaptureConfig
from courrier.web.api.mailpit import iso

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"


def nested(depth: int) -> bytes:
    body = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
    body += b"Content-Type: text/plain\n\ninnermost\n" + b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
    return b"From: a@x.test\nSubject: deep\nMIME-Version: 1.0\n" + body


def test_the_stdlib_parser_recurses_without_bound_and_ours_stops_first():
    with pytest.raises(RecursionError):  # why mimebound exists (if this ever passes, the stdlib got a bound)
        email.message_from_bytes(nested(1000))
    with pytest.raises(MimeLimitError, match="nested deeper than 100"):
        message_from_bytes(nested(1000))
    with pytest.raises(MimeLimitError, match="nested deeper"):
        message_from_bytes(nested(1000), email.policy.default)


def test_nesting_up_to_the_bound_parses_whole():
    msg, p = P.parse(nested(MAX_DEPTH - 1))  # 99 multiparts (the top-level message is the first) + the text leaf
    assert p.error == "" and p.text == "innermost"
    assert P.find_part(msg, ".".join(["1"] * (MAX_DEPTH - 1))) is not None
    _, p = P.parse(nested(MAX_DEPTH))  # one level more
    assert p.error == "MIME parts nested deeper than 100 levels" and p.text == ""


def test_beyond_the_bound_the_header_section_is_read_and_the_reason_kept():
    msg, p = P.parse((HOSTILE / "deep-multipart-1000.eml").read_bytes())
    assert p.subject == "nested multipart x1000" and p.from_["Address"] == "hostile@sender.test"
    assert "nested deeper than 100" in p.error and p.attachments == [] and p.text == ""
    _, p = P.parse((HOSTILE / "deep-rfc822-300.eml").read_bytes())  # message/* nests too
    assert "nested deeper" in p.error


def test_the_number_of_parts_is_bounded():
    _, p = P.parse((HOSTILE / "many-parts-12000.eml").read_bytes())
    assert p.error == f"more than {MAX_PARTS} MIME parts" and p.subject == "12000 sibling parts"
    msg, reason = parse_bounded((HOSTILE / "many-parts-12000.eml").read_bytes())
    assert reason and not msg.is_multipart()


def test_walk_is_iterative_and_bounded_whatever_tree_it_gets():
    top = cur = Message()
    for _ in range(5000):  # built by hand: deeper than any parser would make, deeper than Python's stack
        sub = Message()
        cur.set_type("multipart/mixed")
        cur.attach(sub)
        cur = sub
    cur.set_payload("leaf")
    assert list(P.walk(top)) == []  # nothing below MAX_DEPTH is visited, and no RecursionError
    assert P.find_part(top, "1") is None


@pytest.mark.parametrize("bad", ["", "0", "1.0", "01", "1..2", "a", "1.", "-1", "1" * 7, ".".join(["1"] * 101),
                                 "1\x00", "１"])
def test_part_ids_that_are_no_section_numbers_are_unknown(bad):
    assert P.find_part(P.message_of(b"Subject: x\n\nbody\n"), bad) is None


def test_unknown_charsets_fall_back_to_utf8_then_latin1():
    assert P.decode_text("café".encode(), "x-no-such-charset") == "café"  # valid UTF-8 stays UTF-8
    assert P.decode_text(b"caf\xe9", "x-no-such-charset") == "café"  # otherwise latin-1: every octet kept
    assert P.decode_text(b"\xff\xfe<p>", "idna") == "ÿþ<p>"  # a Python codec that is no MIME charset
    assert P.decode_text(b"x\x80y", "zlib") == "x\x80y"  # a bytes-to-bytes codec
    assert P.decode_text(b"caf\xe9", "iso-8859-1") == "café" and P.decode_text("é".encode("utf-16"), "utf-16") == "é"
    _, p = P.parse((HOSTILE / "unknown-charset.eml").read_bytes())
    assert p.text == "café crème brûlée" and "idna is no charset" in p.html and p.error == ""


def test_every_hostile_message_parses_without_raising():
    for f in sorted(HOSTILE.glob("*.eml")):
        data = f.read_bytes()
        msg, p = P.parse(data)
        json.dumps([p.subject, p.text, p.html, [a.filename for a in p.attachments], p.snippet()])
        for pid, part in P.walk(msg):
            assert P.find_part(P.message_of(data), pid) is not None, (f.name, pid)
            P.part_bytes(part)
        P.parse_bytes(data)


def test_dates_outside_rfc3339_are_clamped_not_raised():
    assert iso(P.parse_date("Fri, 31 Dec 9999 23:59:59 -2359")).startswith("9999-12-31T23:59:59")
    assert iso(-1e20) == "1970-01-01T00:00:00.000Z" and iso(float("nan")) == "1970-01-01T00:00:00.000Z"


def test_sizes_that_do_not_fit_are_refused_unreadable_ones_searched_as_text():
    assert parse_size("10k") == 10240 and parse_size("9223372036854775807") == 2 ** 63 - 1
    for huge in ("9223372036854775808", "99999999999999999999G", "1e400", "9" * 400):
        with pytest.raises(QueryError):
            parse_size(huge)
        with pytest.raises(QueryError):
            compile_query(f"larger:{huge}")
    where, params = compile_query("larger:abc")
    assert "capture_fts" in where and params[0] == '"larger:abc"*' and '%larger:abc%' in params


def test_a_store_with_a_deep_message_starts_reindexes_and_marks_it(tmp_path):
    store = CaptureStore(tmp_path, CaptureConfig(max_messages=0))
    try:
        for i, data in enumerate([b"Subject: fine\n\nx\n", nested(1000), b"Subject: also fine\n\ny\n"]):
            env = CapturedEnvelope(mail_from="a@x.test", rcpts=["b@y.test"])
            (tmp_path / "capture" / "new" / f"17000000{i}.m{i}.test").write_bytes(
                trace_fields(env, "Received: by test; Mon, 2 Mar 2026 10:00:00 +0000\n") + data)
        assert store.scan() == 3  # before: RecursionError out of scan, and out of every start
        assert store.reindex() == 3
        listing = store.list()
        assert [m.subject for m in listing.messages].count("deep") == 1 and listing.total == 3
        errors = store.parse_errors([m.id for m in listing.messages])
        assert list(errors.values()) == ["MIME parts nested deeper than 100 levels"]
        deep_id = next(iter(errors))
        assert store.get(deep_id).summary.subject == "deep" and store.part(deep_id, "1") is not None
        assert store.headers(deep_id)["Subject"] == ["deep"]
    finally:
        store.close()


def test_build_row_keeps_the_reason_in_the_row(tmp_path):
    row = build_row(tmp_path / "new" / "x", nested(200), CapturedEnvelope(), read=False)
    assert row.envelope["error"] == "MIME parts nested deeper than 100 levels" and row.subject == "deep"
    assert "error" not in build_row(tmp_path / "new" / "y", b"Subject: ok\n\nx\n", CapturedEnvelope(), False).envelope
