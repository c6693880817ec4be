"""Mailpit's search syntax: the tokenizer and its SQL compilation."""

import pytest

from courrier.capture.search import compile_query, ms, parse_size, parse_when, tokenize


def test_tokenize():
    assert tokenize('hello "big world" from:alice -subject:"weekly report" !is:read') == [
        (False, "", "hello"), (False, "", "big world"), (False, "from", "alice"),
        (True, "subject", "weekly report"), (True, "is", "read")]
    assert tokenize("  ") == []
    assert tokenize("-") == [(False, "", "-")]
    assert tokenize("http://x.test/a") == [(False, "", "http://x.test/a")]


def test_compile_binds_every_value():
    sql, params = compile_query("from:a%b tag:x is:unread has:attachment larger:1k before:2026-01-01 ab")
    assert "?" in sql and "a%b" not in sql
    assert params[0] == "%a\\%b%"
    assert 1024 in params and ms(parse_when("2026-01-01")) in params
    assert compile_query("") == ("1", [])


def test_dates_and_sizes():
    assert parse_when("1970-01-02") == 86400
    assert parse_when("1970-01-01T01:00:00+01:00") == 0
    assert parse_size("2M") == 2 * 1024 * 1024
    with pytest.raises(ValueError):
        parse_when("yesterday-ish")
    # the forms of Mailpit's dateparse (internal/storage/search.go reads before:/after: with it)
    day = parse_when("2024-04-01")
    assert parse_when("2024/04/01") == parse_when("1 Apr 2024") == parse_when("April 1, 2024") == day
    assert parse_when("Mon, 01 Apr 2024 00:00:00 +0000") == day and parse_when("1711929600000") == day
