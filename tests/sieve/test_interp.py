"""The interpreter and the compiler, one test per RFC section (RFC 5228 and its extensions): what a script decides
for a message, as data. Dovecot Pigeonhole agrees on a table of these (test_pigeonhole.py)."""

from __future__ import annotations

import pytest

from courrier.sieve.interp import MAX_REDIRECTS, Envelope, SieveRuntimeError, evaluate
from courrier.sieve.message import MessageView
from courrier.sieve.script import SieveSyntaxError, check, compile_script

MSG = (b"From: Bob <bob@example.org>\r\nTo: me@example.test, \"Team\" <team@example.test>\r\n"
       b"Subject: Hello *World*\r\nX-Count: 12\r\n\r\nbody text\r\n")


def run(script: str, msg: bytes = MSG, sender: str = "bob@example.org", to: str = "me@example.test"):
    return evaluate(compile_script(script), MessageView(msg), Envelope(sender, to))


def stored(script: str, msg: bytes = MSG) -> dict:
    return {k: sorted(v[0]) for k, v in run(script, msg).stored().items()}


# ---------------------------------------------------------------- RFC 5228 §2 lexical rules, §8 grammar

def test_rfc5228_2_syntax_errors_name_line_and_reason():
    with pytest.raises(SieveSyntaxError) as e:
        compile_script('keep;\n\nfileinto "a";\n')
    assert e.value.line == 3 and str(e.value).startswith("line 3: ")
    assert check("keep;\nfrobnicate;") == "line 2: unknown command 'frobnicate'"
    assert "not loaded" in (check('fileinto "x";') or "")  # RFC 5228 §3.2: require first


def test_rfc5228_3_2_require_unknown_extension():
    assert check('require "x-unknown";') == "line 1: unsupported extension 'x-unknown' in require"


def test_rfc5228_2_4_2_strings_escapes_and_multiline():
    r = run('require "reject"; reject text:\n..dot\nline "two" \\\\\n.\n;')
    assert r.reject == '.dot\nline "two" \\\\\n'
    r = run(r'require "reject"; reject "a\"b\\c\q";')
    assert r.reject == 'a"b\\cq'


def test_rfc5228_2_4_2_4_encoded_characters():
    r = run('require ["encoded-character", "reject"]; reject "${hex:48 69}${unicode:20ac}";')
    assert r.reject == "Hi€"


def test_rfc5228_2_4_1_numbers_with_quantifiers():
    assert run('require "fileinto"; if size :under 1K { fileinto "small"; }').folders
    assert not run('require "fileinto"; if size :over 1M { fileinto "big"; }').folders


# ---------------------------------------------------------------- §2.7 match types, comparators

@pytest.mark.parametrize("test,expected", [
    ('header :is "subject" "hello *world*"', True),                      # i;ascii-casemap by default
    ('header :comparator "i;octet" :is "subject" "hello *world*"', False),
    ('header :contains "subject" "WORLD"', True),
    ('header :matches "subject" "Hello \\\\*W*"', True),                 # \\* is a literal star
    ('header :matches "subject" "H?llo*"', True),
    ('header :matches "subject" "Hello"', False),
    ('header :is "x-missing" ""', False),                                # §5.7: no field, no match
    ('not header :contains "subject" "nope"', True),
])
def test_rfc5228_2_7_match_types(test, expected):
    assert bool(run(f'require "fileinto"; if {test} {{ fileinto "Y"; }}').folders) is expected


def test_rfc5228_2_7_4_address_parts():
    assert run('require "fileinto"; if address :localpart :is "to" "team" { fileinto "T"; }').folders
    assert run('require "fileinto"; if address :domain :is "from" "EXAMPLE.ORG" { fileinto "D"; }').folders


def test_rfc5228_2_10_2_implicit_keep_and_duplicates():
    assert stored('require "fileinto"; fileinto "A"; fileinto "A";') == {"A": []}        # §2.10.3 one copy
    assert stored('require ["fileinto", "copy"]; fileinto :copy "A";') == {"A": [], "INBOX": []}  # RFC 3894
    assert stored('discard;') == {}


def test_rfc5228_3_3_stop():
    assert stored('require "fileinto"; fileinto "A"; stop; fileinto "B";') == {"A": []}


def test_rfc5228_3_1_elsif_chain():
    s = ('require "fileinto"; if false { fileinto "A"; } elsif true { fileinto "B"; } '
         'elsif true { fileinto "C"; } else { fileinto "D"; }')
    assert stored(s) == {"B": []}


def test_rfc5228_5_4_envelope():
    assert run('require ["envelope", "fileinto"]; if envelope :is "to" "me@example.test" { fileinto "E"; }').folders
    r = evaluate(compile_script('require ["envelope", "fileinto"]; if envelope :is "from" "" { fileinto "N"; }'),
                 MessageView(MSG), Envelope("", "me@example.test"))
    assert r.folders  # <> is the empty string


def test_rfc5228_5_5_exists_needs_all():
    assert run('require "fileinto"; if exists ["From", "X-Count"] { fileinto "A"; }').folders
    assert not run('require "fileinto"; if exists ["From", "X-Nope"] { fileinto "A"; }').folders


def test_rfc5228_4_2_redirect_limit():
    lines = "".join(f'redirect "u{i}@example.com";' for i in range(MAX_REDIRECTS + 1))
    with pytest.raises(SieveRuntimeError, match="redirects"):
        run(lines)
    with pytest.raises(SieveRuntimeError, match="invalid address"):
        run('redirect "not an address";')


# ---------------------------------------------------------------- RFC 5229 variables

def test_rfc5229_3_2_match_variables_and_4_1_modifiers():
    r = run('require ["variables", "reject"]; if header :matches "subject" "* *" { set :upper "a" "${1}"; '
            'set :lowerfirst "b" "${a}"; set :length "n" "${2}"; set :quotewildcard "q" "${2}"; '
            'reject "${a}|${b}|${n}|${q}|${0}|${9}|${undefined}"; }')
    assert r.reject == "HELLO|hELLO|7|\\*World\\*|Hello *World*||"


def test_rfc5229_5_string_test():
    assert run('require ["variables", "fileinto"]; set "x" "abc"; if string :matches "${x}" "a*" '
               '{ fileinto "S"; }').folders


# ---------------------------------------------------------------- RFC 5232 imap4flags

def test_rfc5232_flags_follow_the_internal_variable():
    assert stored('require "imap4flags"; setflag "\\\\Seen"; addflag "\\\\Flagged \\\\seen"; '
                  'removeflag "\\\\SEEN";') == {"INBOX": ["\\Flagged"]}
    assert stored('require ["imap4flags", "fileinto"]; fileinto :flags "$a $b" "A"; addflag "$c";') == \
        {"A": ["$a", "$b"]}
    assert run('require ["imap4flags", "variables", "fileinto"]; addflag "v" "$x"; '
               'if hasflag "v" "$X" { fileinto "H"; }').folders


# ---------------------------------------------------------------- RFC 5173 body, RFC 5231 relational

def test_rfc5173_body_and_rfc5231_relational():
    assert run('require ["body", "fileinto"]; if body :contains "BODY TEXT" { fileinto "B"; }').folders
    assert run('require ["relational", "comparator-i;ascii-numeric", "fileinto"]; '
               'if header :value "gt" :comparator "i;ascii-numeric" "x-count" "9" { fileinto "N"; }').folders
    assert run('require ["relational", "fileinto"]; if address :count "eq" ["to"] "2" { fileinto "C"; }').folders


# ---------------------------------------------------------------- RFC 5429, RFC 5230

def test_rfc5429_reject_conflicts_with_delivering_actions():
    with pytest.raises(SieveRuntimeError, match="reject cannot be combined"):
        run('require ["reject", "fileinto"]; fileinto "A"; reject "no";')
    r = run('require "ereject"; ereject "go away";')
    assert r.reject == "go away" and r.ereject and r.stored() == {}


def test_rfc5230_vacation_arguments():
    r = run('require "vacation"; vacation :days 100 :subject "Out" :from "me@example.test" '
            ':addresses ["alias@example.test"] :handle "h1" :mime "Content-Type: text/plain\\r\\n\\r\\nAway";')
    v = r.vacation
    assert v is not None and v.days == 30 and v.subject == "Out" and v.handle == "h1" and v.mime
    assert v.addresses == ["alias@example.test"] and r.stored() == {"INBOX": (frozenset(), False)}  # keeps
    with pytest.raises(SieveRuntimeError, match="more than one vacation"):
        run('require "vacation"; vacation "a"; vacation "b";')


# ---------------------------------------------------------------- RFC 6609 include, limits

def test_rfc6609_include_globals_and_depth():
    lib = compile_script('require ["include", "variables", "fileinto"]; global "box"; fileinto "${box}";')
    main = compile_script('require ["include", "variables"]; global "box"; set "box" "Shared"; '
                          'include :personal "lib"; include :once :personal "lib"; include :optional "none";')
    r = evaluate(main, MessageView(MSG), Envelope("", "me@example.test"),
                 include=lambda name, glob: lib if name == "lib" else None)
    assert list(r.folders) == ["Shared"]
    loop = compile_script('require "include"; include :personal "loop";')
    with pytest.raises(SieveRuntimeError, match="nested deeper"):
        evaluate(loop, MessageView(MSG), Envelope("", "me@example.test"), include=lambda n, g: loop)
    with pytest.raises(SieveRuntimeError, match="does not exist"):
        evaluate(loop, MessageView(MSG), Envelope("", "me@example.test"), include=lambda n, g: None)


def test_actions_are_bounded():
    script = 'require ["fileinto", "copy"]; ' + "".join(f'fileinto :copy "F{i}";' for i in range(40))
    with pytest.raises(SieveRuntimeError, match="actions"):
        run(script)
