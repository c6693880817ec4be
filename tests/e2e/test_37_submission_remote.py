"""Scenario 37: mail submitted for another domain goes to the outbound queue (here relayed through a smarthost: a
second courrier playing remote.test's MX) while local recipients of the same transaction get their copy directly;
both copies carry the Message-ID/Date the MSA added. (Without an outbound queue the policy answers RCPT with
451 4.3.2 instead: tests/smtp/test_submission.py.)"""

import email
import email.policy
import smtplib
import time

import pytest

from tests.e2e.msa_support import PASSWORDS, insecure_context, messages, msa
from tests.support import Server

BOB = "bob@example.test"
ALICE = "alice@example.test"
CAROL = "carol@remote.test"


@pytest.fixture(scope="module")
def remote(tmp_path_factory, server_store):
    s = Server(tmp_path_factory.mktemp("remote37"), listeners=("smtp",), domains=("remote.test",),
               hostname="mx.remote.test")
    s.add_user(CAROL)
    yield s.start()
    s.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, server_store, remote):
    s = msa(tmp_path_factory.mktemp("msa37"), sections={"delivery": {
        "smarthost": f"127.0.0.1:{remote.ports['smtp']}", "retry_first": "1s", "retry_max": "2s",
        "connect_timeout": "2s"}})
    yield s
    s.stop()


def wait_for(cond, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (v := cond()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
    return v


def test_remote_recipient_is_queued_and_relayed(server, remote):
    msg = f"From: Bob <{BOB}>\r\nTo: {CAROL}, {ALICE}\r\nSubject: to the world\r\n\r\nhello\r\n".encode()
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.starttls(context=insecure_context())
        c.login(BOB, PASSWORDS[BOB])
        assert c.sendmail(BOB, [CAROL, ALICE], msg) == {}
    local = [email.message_from_bytes(m, policy=email.policy.default) for m in messages(server, ALICE)]
    far = wait_for(lambda: messages(remote, CAROL))
    relayed = email.message_from_bytes(far[0], policy=email.policy.default)
    assert relayed["Subject"] == "to the world" and relayed["Return-Path"] == f"<{BOB}>"
    assert relayed["Message-ID"] == local[0]["Message-ID"] and relayed["Message-ID"].endswith("@mx.example.test>")
    assert relayed["Date"] == local[0]["Date"]
    assert any("authenticated sender: bob@example.test" in r for r in relayed.get_all("Received"))
    server.wait_log("smtp.message")
    server.wait_log("queue.queued")


def test_forged_sender_is_not_relayed(server, remote):
    before = len(messages(remote, CAROL))
    queued = server.log().count("queue.queued")
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.starttls(context=insecure_context())
        c.login(BOB, PASSWORDS[BOB])
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(BOB, [CAROL], b"From: ceo@remote.test\r\nSubject: wire money\r\n\r\nnow\r\n")
        assert e.value.smtp_code == 553
    # refused at the end of DATA, before the outbound queue ever sees it
    assert server.log().count("queue.queued") == queued
    assert len(messages(remote, CAROL)) == before
