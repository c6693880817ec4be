"""The client's side of SMTP against Postfix's smtp-sink, a server someone else wrote."""

import ssl

import pytest

from courrier.client.smtpclient import ClientError, SMTPClient, SMTPReplyError, dot_stuff
from courrier.client.submit import ServerOptions, client_context, is_loopback, open_session, submit
from tests.client.sink import dumped, smtp_sink

MESSAGE = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nlast line without newline"


def test_dot_stuffing():
    assert dot_stuff(b".a\n.b\r\nc") == b"..a\r\n..b\r\nc\r\n"  # RFC 5321 §4.5.2
    assert dot_stuff(b"") == b""


async def test_pipelined_transaction_traced_and_transparent():
    lines: list[tuple[str, str]] = []
    with smtp_sink(dump=True) as (port, dump):
        tx = await submit(ServerOptions("127.0.0.1", port), "a@x.test", ["b@y.test", "c@y.test"], MESSAGE,
                          trace=lambda d, line: lines.append((d, line)))
        body = dumped(dump)[0]
    assert tx.delivered and tx.accepted == ["b@y.test", "c@y.test"] and tx.data.code == 250
    cs = [line for d, line in lines if d in "CS"]
    # RFC 2920: MAIL, RCPT, RCPT, DATA written together, then their four replies
    i = cs.index("MAIL FROM:<a@x.test>")
    assert cs[i:i + 4] == ["MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA"]
    assert [d for d, _ in lines if d in "CS"][i:i + 8] == ["C"] * 4 + ["S"] * 4
    assert ("C", "..starts with a dot") in lines and ("C", ".") in lines and ("S", "221 Bye") in lines
    assert b"\n.starts with a dot\n..two dots\nlast line without newline\n" in body.replace(b"\r\n", b"\n")


async def test_auth_secrets_never_reach_the_trace():
    lines: list[str] = []
    with smtp_sink() as (port, _):
        c = await open_session(ServerOptions("127.0.0.1", port, user="joe", password="s3cr3t-pw"),
                               trace=lambda d, line: lines.append(f"{d}: {line}"))
        await c.quit()
    text = "\n".join(lines)
    assert "C: AUTH PLAIN ********" in text
    assert "s3cr3t" not in text and "czNjcjN0" not in text and "am9lAHMzY3IzdC1wdw" not in text


async def test_without_pipelining_and_without_esmtp():
    for flags, esmtp in ((("-p",), True), (("-e",), False)):
        with smtp_sink(*flags) as (port, _):
            lines: list[tuple[str, str]] = []
            c = await SMTPClient.connect("127.0.0.1", port, trace=lambda d, line, lines=lines: lines.append((d, line)))
            await c.ehlo("client.test")
            assert c.esmtp is esmtp and not c.has("PIPELINING")
            tx = await c.send("a@x.test", ["b@y.test"], b"Subject: s\r\n\r\nhi\r\n")
            await c.quit()
        assert tx.delivered
        seq = [(d, line.split(" ")[0]) for d, line in lines if d in "CS"]
        i = seq.index(("C", "MAIL"))
        assert seq[i:i + 6] == [("C", "MAIL"), ("S", "250"), ("C", "RCPT"), ("S", "250"), ("C", "DATA"), ("S", "354")]
        if not esmtp:
            assert ("C", "HELO") in seq


async def test_refused_recipients_mean_no_data():
    with smtp_sink("-f", "RCPT", dump=True) as (port, dump):
        tx = await submit(ServerOptions("127.0.0.1", port), "a@x.test", ["b@y.test"], b"Subject: s\r\n\r\nx\r\n")
        assert not tx.delivered and tx.data is None
        assert tx.refused["b@y.test"].code == 500
        assert dumped(dump, timeout=0.3) == []


async def test_refused_mail_raises_with_the_reply():
    with smtp_sink("-f", "MAIL") as (port, _):
        with pytest.raises(SMTPReplyError) as e:
            await submit(ServerOptions("127.0.0.1", port), "a@x.test", ["b@y.test"], b"x\r\n")
    assert e.value.step == "MAIL FROM" and e.value.reply.code == 500


async def test_connection_failures_are_client_errors():
    with smtp_sink("-q", "RCPT") as (port, _):
        with pytest.raises(ClientError, match="connection closed"):
            await submit(ServerOptions("127.0.0.1", port), "a@x.test", ["b@y.test"], b"x\r\n")
    with pytest.raises(ClientError, match="connection refused"):
        await submit(ServerOptions("127.0.0.1", port), "a@x.test", ["b@y.test"], b"x\r\n")


def test_loopback_detection_decides_clear_text_auth_and_verification():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("192.0.2.1") and not is_loopback("mail.example.com")
    ctx = client_context(ServerOptions("mail.example.com", 587, "starttls"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname  # secure by default off loopback
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(ServerOptions("127.0.0.1", 587, "starttls")).verify_mode == ssl.CERT_NONE
