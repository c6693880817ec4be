"""Address lists as ENVELOPE and SEARCH see them (courrier/mail/addresses.py): imaptest's fetch-envelope and
search-addresses forms, and the choices checked against Dovecot 2.3 (comment as name, routes, groups)."""

import time

import pytest

from courrier.mail.addresses import MAX_ADDRESSES, Group, Mailbox, display, mailboxes, parse


def mb(name, local, domain, route=None):
    return Mailbox(name, route, local, domain)


@pytest.mark.parametrize("value,expected", [
    ("From Real <fromuser@fromdomain.org>", [mb("From Real", "fromuser", "fromdomain.org")]),
    ("user@domain (Real Name)", [mb("Real Name", "user", "domain")]),  # RFC 822 habit: the comment names it
    ("a@b (one) (two)", [mb("two", "a", "b")]),
    ("<@route:user@domain>", [mb(None, "user", "domain", "@route")]),  # RFC 5322 §4.4 obs-route kept
    ("<@a,@b:u@h>", [mb(None, "u", "h", "@a,@b")]),
    ("<user-from (comment)@ (comment) domain.org>", [mb(None, "user-from", "domain.org")]),  # comments removed
    ('"a b"@x.test', [mb(None, "a b", "x.test")]),
    ('"quoted" (c) <q@x>, Alice <alice@x> (comment)', [mb("quoted", "q", "x"), mb("Alice", "alice", "x")]),
    ("(c) Alice (d) <alice@x>", [mb("Alice", "alice", "x")]),
    ("A.B <ab@x>", [mb("A.B", "ab", "x")]),
    ("=?utf-8?q?Ren=C3=A9e?= <r@x>", [mb("=?utf-8?q?Ren=C3=A9e?=", "r", "x")]),  # ENVELOPE: as written
    ('"" <e@x>', [mb(None, "e", "x")]),
    ("foo@[1.2.3.4]", [mb(None, "foo", "[1.2.3.4]")]),
    ("x@y,,z@w, (only a comment)", [mb(None, "x", "y"), mb(None, "z", "w")]),  # RFC 5322 §4.4 obs-addr-list
    ("bob", [mb(None, "bob", "")]),
    ("", []),
])
def test_mailboxes(value, expected):
    assert parse(value) == expected


def test_groups():
    assert parse("group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;") == [
        Group("group", (mb(None, "g1", "d1.org"), mb(None, "g2", "d2.org"))), Group("group2", (mb(None, "g3", "d3.org"),))]
    assert parse("undisclosed-recipients:;") == [Group("undisclosed-recipients", ())]
    assert parse("Unclosed: a@b.test") == [Group("Unclosed", (mb(None, "a", "b.test"),))]
    assert parse('a@x, "The: Team": "Q; R" <q@x>, b@x;, c@x') == [
        mb(None, "a", "x"), Group("The: Team", (mb("Q; R", "q", "x"), mb(None, "b", "x"))), mb(None, "c", "x")]
    assert mailboxes(parse("g: a@b;, c@d")) == [mb(None, "a", "b"), mb(None, "c", "d")]


def test_display_is_what_search_matches():
    assert display(parse("user@domain (RealFrom), <@r:u@h>, g: a@b, =?utf-8?q?Ren=C3=A9e?= <r@x>;")) == (
        "RealFrom <user@domain>, <@r:u@h>, g: a@b, Renée <r@x>;")
    assert display(parse("<user-from (comment)@ (comment) domain.org>")) == "user-from@domain.org"


@pytest.mark.parametrize("value", ["(" * 200_000, ")" * 200_000, '"' * 200_000, "<" * 200_000, "@:" * 100_000,
                                   "a@b," * 100_000, "g:" + "a@b;" * 50_000, "\\" * 200_000,
                                   "a " * 60_000 + "@" + ":" * 60_000, "a@b (" + "(x)" * 60_000])
def test_bounded_and_linear(value):
    """No recursion (200,000 nested comments are counted, not descended into) and bounded output."""
    t = time.perf_counter()
    got = parse(value)
    assert time.perf_counter() - t < 2.0
    assert len(got) <= MAX_ADDRESSES
