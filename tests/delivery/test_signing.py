"""sign_or_keep: the DKIM header on top when a key applies; the message kept whole and one log line when signing
fails (real dkimpy failures: a header it cannot canonicalize)."""

from __future__ import annotations

import io

import pytest

from courrier import log
from courrier.delivery.signing import sign_or_keep
from courrier.mailauth import dkim

MESSAGE = b"From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: hi\r\n\r\nHello\r\n"


@pytest.fixture(scope="module")
def signer() -> dkim.Signer:
    return dkim.Signer({"a.test": dkim.signing_key("a.test", "sel1", dkim.generate_pem("ed25519"))})


@pytest.fixture
def logs():
    buf = io.StringIO()
    log.setup("info", buf)
    yield buf
    log.setup("info", None)


def test_a_signable_message_gets_the_signature_on_top(signer, logs):
    out = sign_or_keep(signer.header, MESSAGE, "Q1")
    assert out.startswith(b"DKIM-Signature:") and out.endswith(MESSAGE) and b"d=a.test" in out
    assert logs.getvalue() == ""


def test_no_signer_or_no_key_keeps_the_message(signer, logs):
    assert sign_or_keep(None, MESSAGE, "Q1") == MESSAGE
    other = MESSAGE.replace(b"a.test", b"elsewhere.test")
    assert sign_or_keep(signer.header, other, "Q1") == other
    assert logs.getvalue() == ""


@pytest.mark.parametrize("message", [
    b" leading continuation\r\nFrom: a@a.test\r\n\r\nx\r\n",
    b"From: a@a.test\r\nnot a header line\r\n\r\nx\r\n",
])
def test_a_signing_failure_keeps_the_message_unsigned_with_one_log_line(signer, logs, message):
    assert sign_or_keep(signer.header, message, "Q42") == message
    [line] = logs.getvalue().splitlines()
    assert " error queue.sign_failed qid=Q42 " in line and "SignError" in line
