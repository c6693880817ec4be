"""Hostile input never escapes a mail-authentication entry point as an exception (issue 11 item 3).

Every way dkimpy, pyspf, dnspython or publicsuffixlist can fail on what a stranger sends maps to an RFC 8601 result:
permerror (cannot be evaluated as sent), temperror (DNS trouble) or none. Each entry point — ``dkim.verify``,
``dkim.Signer.header``, ``spf.check_spf``/``check_helo``, ``dmarc.evaluate``, ``Resolver.query`` and the
``Authenticator`` — is walked with a corpus of hostile messages and names, then with generated header blocks.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from courrier.mailauth import dkim, dmarc, spf
from courrier.mailauth.report import Authenticator

PSL = PublicSuffixList()
SPF_RESULTS = set(spf.RESULTS)
DKIM_RESULTS = {"pass", "fail", "neutral", "temperror", "permerror"}
DMARC_RESULTS = {"pass", "fail", "none", "temperror", "permerror"}

BODY = b"\r\nhello\r\n"
# (name, header block): the three cases of the audit first, then the rest of the class
HOSTILE_HEADS = {
    "space before colon": b"From: a@a.test\r\nSubject : x\r\n",
    "colon-less line": b"From: a@a.test\r\nthis line has no colon\r\n",
    "8-bit field name": b"Sub\xe9ject: x\r\nFrom: a@a.test\r\n",
    "NUL field name": b"X-\x00: y\r\nFrom: a@a.test\r\n",
    "leading continuation": b" folded before any field\r\nFrom: a@a.test\r\n",
    "bare CR": b"From: a@a.test\rSubject: x\r\n",
    "LF only": b"From: a@a.test\nSubject: x\n",
    "no From": b"Subject: x\r\n",
    "empty From": b"From:\r\n",
    "two From": b"From: a@a.test\r\nFrom: b@b.test\r\n",
    "From with 8-bit domain": b"From: a@\xff\xfe.test\r\n",
    "From with IP literal": b"From: a@[127.0.0.1]\r\n",
    "From with bad escape": b"From: a@x\\256.test\r\n",
    "From with empty label": b"From: a@a..test\r\n",
    "From with long label": b"From: a@" + b"x" * 70 + b".test\r\n",
    "From with huge name": b"From: a@" + b"x." * 3000 + b"test\r\n",
    "From with broken encoded word": b"From: =?utf-8?b?\xff?= <a@a.test>\r\n",
    "many fields": b"From: a@a.test\r\n" + b"X-A: b\r\n" * 5000,
    "empty": b"",
}
# DKIM-Signature fields dkimpy parses but cannot use
BAD_SIGNATURES = {
    "empty value": b"DKIM-Signature: \r\n",
    "no tags": b"DKIM-Signature: v=1; d=a.test; s=s1; h=; bh=; b=\r\n",
    "8-bit tags": b"DKIM-Signature: v=1; a=rsa-sha256; d=\xff; s=\x00; h=from; bh=x; b=y\r\n",
    "empty label in d=": b"DKIM-Signature: v=1; a=rsa-sha256; d=a..test; s=s.s; h=from; bh=AA==; b=AA==\r\n",
    "huge l=": b"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s1; h=from; bh=AA==; b=AA==; l=9" + b"9" * 40 + b"\r\n",
    "huge t=": b"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s1; h=from; bh=AA==; b=AA==; t=9" + b"9" * 40 + b"\r\n",
    "unknown algorithm": b"DKIM-Signature: v=1; a=md5; d=a.test; s=s1; h=from; bh=AA==; b=AA==\r\n",
}
HOSTILE_NAMES = ["", ".", "..", "a..b", "x" * 64 + ".test", ("a" * 63 + ".") * 5, "\x00.test", "é.test",
                 "\udcff.test", "a b.test", "a\\256.test", "\\", "-a.test", "*.test", "[1.2.3.4]", "1.2.3.4",
                 "@", "a@b@c", "xn--.test", "xn--zz.test", "ß.test", "a" * 300]


@pytest.fixture
def world(fake_dns):
    """a.test with SPF for 127.0.0.1, a key for s1, DMARC p=reject — so results are decided, not all none."""
    key = dkim.signing_key("a.test", "s1", dkim.generate_pem("ed25519"))
    fake_dns.update({
        "a.test": {"TXT": ["v=spf1 ip4:127.0.0.1 exists:%{l}.%{s}.e.test -all"]},
        key.record_name: {"TXT": [key.record]},
        "_dmarc.a.test": {"TXT": ["v=DMARC1; p=reject"]},
    })
    return key


@pytest.fixture
def auth(resolver):
    return Authenticator(resolver, "mx.b.test", PSL)


@pytest.mark.parametrize("name", list(HOSTILE_HEADS))
def test_unsigned_hostile_message_is_dkim_none(resolver, world, name):
    assert dkim.verify(HOSTILE_HEADS[name] + BODY, resolver) == []


@pytest.mark.parametrize("name", list(HOSTILE_HEADS)[:4])
def test_signed_message_with_unparsable_header_is_permerror(resolver, world, name):
    """A real signature over a header block dkimpy cannot read: permerror, with the signature's d= and s=."""
    signed = dkim.Signer({"a.test": world}).sign(b"From: a@a.test\r\nSubject: ok\r\n" + BODY)
    sig_field, _, rest = signed.partition(b"From: a@a.test\r\n")
    hostile = sig_field + HOSTILE_HEADS[name] + BODY
    [r] = dkim.verify(hostile, resolver)
    assert r.result == "permerror" and r.domain == "a.test" and r.selector == "s1"
    assert "cannot be parsed" in r.reason


@pytest.mark.parametrize("name", list(BAD_SIGNATURES))
def test_unusable_signature_is_a_result(resolver, world, name):
    [r] = dkim.verify(BAD_SIGNATURES[name] + b"From: a@a.test\r\n" + BODY, resolver)
    assert r.result in DKIM_RESULTS - {"pass"}


@pytest.mark.parametrize("name", list(HOSTILE_HEADS))
def test_signer_refuses_with_sign_error_only(world, name):
    signer = dkim.Signer({"a.test": world})
    try:
        signer.header(HOSTILE_HEADS[name] + BODY)
    except dkim.SignError as e:
        assert "cannot DKIM-sign" in str(e)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_resolver_answers_nothing_for_a_name_dns_cannot_hold(resolver, name):
    """A bad escape, an empty or long label, what IDNA refuses: nothing is there ([]), not a DNS failure."""
    assert isinstance(resolver.txt(name), list)
    assert isinstance(resolver.query(name, "A"), list)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_spf_with_hostile_identities(resolver, world, name):
    for local in ("user", "", "a\x00b", "é", "%{l}", '"q q"', "a" * 300):
        for ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            r = spf.check_spf(resolver, ip, f"{local}@{name}", name)
            assert r.result in SPF_RESULTS
    assert spf.check_helo(resolver, "127.0.0.1", name).result in SPF_RESULTS
    assert spf.check_spf(resolver, "not an ip", f"a@{name}", name).result in SPF_RESULTS


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_dmarc_with_hostile_from_domain(resolver, world, name):
    r = dmarc.evaluate(resolver, PSL, [name], None, [])
    assert r.result in DMARC_RESULTS and r.result != "temperror"  # nothing was asked that DNS could fail


@pytest.mark.parametrize("name", list(HOSTILE_HEADS))
def test_authenticator_judges_every_hostile_message(auth, world, name):
    message = HOSTILE_HEADS[name] + BODY
    r = auth.check(message, client_ip="127.0.0.1", helo="mx.a.test", mail_from="user@a.test")
    assert r.spf is not None and r.spf.result == "pass"  # SPF is judged on whatever the header says
    assert r.dmarc.result in DMARC_RESULTS
    header = r.header("mx.b.test")
    assert header.startswith("Authentication-Results: mx.b.test;") and "spf=pass" in header


async def test_check_async_never_raises_on_hostile_messages(auth, world):
    reports = await asyncio.gather(*(
        auth.check_async(m + BODY, client_ip="127.0.0.1", helo="\x00", mail_from="\xff@\x00")
        for m in HOSTILE_HEADS.values()))
    assert all(r.dmarc.result in DMARC_RESULTS for r in reports)


_line = st.one_of(
    st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.tuples(st.sampled_from([b"From", b"Subject", b"DKIM-Signature", b"To", b"Sub\xe9"]),
              st.sampled_from([b":", b" :", b"\t:", b""]),
              st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b))
    .map(lambda t: b"".join(t)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=8), eol=st.sampled_from([b"\r\n", b"\n"]))
def test_generated_header_blocks_never_raise(auth, lines, eol):
    message = eol.join(lines) + eol + eol + b"body" + eol
    r = auth.check(message, client_ip="127.0.0.2", helo="h.test", mail_from="x@h.test")
    assert all(x.result in DKIM_RESULTS for x in r.dkim) and r.dmarc.result in DMARC_RESULTS



def test_values_from_the_message_cannot_break_our_header(resolver, world):
    """d= and s= folded over lines (CRLF or LF), with control characters: our Authentication-Results stays one
    field of our own lines."""
    sig = (b"DKIM-Signature: v=1; a=rsa-sha256; d=a.test\r\n\tX-Evil: 1; s=s1\r\n X-Evil2:\x01 2; h=from;"
           b" bh=AA==; b=AA==\r\n")
    for tail in (b"From: a@a.test\r\n", b"Subject : x\r\nFrom: a@a.test\r\n"):
        auth = Authenticator(resolver, "mx.b.test", PSL)
        header = auth.check(sig + tail + BODY, client_ip="127.0.0.1", helo="h.test",
                            mail_from="a\r\nX-Evil3: 3@a.test").header("mx.b.test")
        lines = header.split("\n")
        assert all(line.startswith(("Authentication-Results:", "\t")) for line in lines if line)
        assert "\r" not in header and "\x01" not in header
