"""Scenario 02: RFC 5321 on the wire — extensions, order, limits, relay refusals, BDAT, SMTPUTF8, trace headers."""

import smtplib

import pytest

from tests.smtp_raw import Raw

MSG = b"From: a@else.test\r\nTo: bob@example.test\r\nSubject: t\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def mx(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("mx"), sections={"limits": {"max_message_size": 12_000_000,
                                                                   "max_recipients": 5, "max_errors": 20}})
    s.add_user("bob@example.test")
    s.add_user("carol@example.test", "pw", "--admin")
    s.cli("user", "alias", "add", "bob@example.test", "robert@example.test")
    s.start()
    yield s
    s.stop()


def delivered(mx, account):
    return mx.parsed(account)


def by_subject(mx, account, subject):
    msgs = [m for m in delivered(mx, account) if m["Subject"] == subject]
    assert len(msgs) == 1, [m["Subject"] for m in delivered(mx, account)]
    return msgs[0]


def raw_files(mx, account):
    """The stored messages by name, bytes as stored (LF), whatever the store."""
    return {m.name: m.data for m in mx.stored(account)}


def test_ehlo_lists_every_extension(mx):
    r = Raw(mx.ports["smtp"])
    assert r.greeting[0] == 220 and "ESMTP" in r.greeting[1]
    code, text = r.cmd("EHLO client.test")
    assert code == 250
    kws = {line.split()[0] for line in text.split("\n")[1:]}
    assert {"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN",
            "STARTTLS"} <= kws
    assert "SIZE 12000000" in text
    assert "AUTH" not in kws  # the MX role offers no AUTH
    assert r.cmd("QUIT")[0] == 221


def test_wrong_order_unknown_and_long_lines(mx):
    r = Raw(mx.ports["smtp"])
    assert r.cmd("MAIL FROM:<a@else.test>") == (503, "5.5.1 Send EHLO/HELO first")
    r.cmd("EHLO c.test")
    assert r.cmd("RCPT TO:<bob@example.test>")[0] == 503
    assert r.cmd("DATA")[0] == 503
    code, text = r.cmd("FROBNICATE")
    assert (code, text[:5]) == (500, "5.5.2")
    code, text = r.cmd("NOOP " + "x" * 600)
    assert (code, text[:5]) == (500, "5.5.2")
    assert r.cmd("VRFY bob")[0] == 252
    assert r.cmd("HELP")[0] == 214
    assert r.cmd("NOOP")[0] == 250
    assert r.cmd("MAIL FROM:<a@else.test>")[0] == 250
    assert r.cmd("MAIL FROM:<a@else.test>")[0] == 503  # nested MAIL
    assert r.cmd("RSET")[0] == 250
    assert r.cmd("RCPT TO:<bob@example.test>")[0] == 503  # RSET forgot the transaction
    assert r.cmd("MAIL FROM:<a@else.test> FOO=BAR")[0] == 555
    assert r.cmd("MAIL FROM:a@else.test SIZE=99999999")[:2] == (552, "5.3.4 Message size exceeds fixed maximum message size")
    r.cmd("QUIT")


def test_unknown_user_and_relay_battery(mx):
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    assert r.cmd("MAIL FROM:<a@else.test>")[0] == 250
    assert r.cmd("RCPT TO:<nobody@example.test>")[:2] == (550, "5.1.1 No such user here")
    for trick in ["someone@other.test", "bob%other.test@example.test", '"bob@other.test"@example.test',
                  "@example.test:bob@other.test", "other.test!bob@example.test", "bob@[127.0.0.1]",
                  "bob@example.test.other.test"]:
        code, text = r.cmd(f"RCPT TO:<{trick}>")
        assert code in (550, 554), (trick, code, text)
        assert text.startswith("5.1.1" if code == 550 else "5.7.1"), (trick, text)
    assert r.cmd("DATA")[:2] == (554, "5.5.1 No valid recipients")
    r.cmd("QUIT")


def test_http_verb_answered_502_and_closed(mx):
    r = Raw(mx.ports["smtp"])
    assert r.cmd("GET / HTTP/1.1")[0] == 502
    assert r.closed()


def test_dot_stuffing_and_8bit_body_stored_byte_for_byte(mx):
    body = "Subject: dots\r\nFrom: a@else.test\r\n\r\n.leading dot\r\n..two\r\nnaïve café\r\n".encode()
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"]) as c:
        c.sendmail("a@else.test", ["bob@example.test"], body, mail_options=["BODY=8BITMIME"])
    m = by_subject(mx, "bob@example.test", "dots")
    raw = m.as_bytes()
    assert b"\n.leading dot\n..two\nna\xc3\xafve caf\xc3\xa9\n" in raw


def test_smtputf8_addresses_and_headers(mx):
    body = "Subject: =?utf-8?q?h=C3=A9?=\r\nFrom: Jörg <jörg@bücher.test>\r\nX-Tëst: ü\r\n\r\nhi\r\n".encode()
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"]) as c:
        c.ehlo()
        c.sendmail("jörg@bücher.test", ["bob@example.test"], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    files = raw_files(mx, "bob@example.test")
    hit = [v for v in files.values() if "jörg@bücher.test".encode() in v]
    assert len(hit) == 1
    assert "Return-Path: <jörg@bücher.test>\n".encode() in hit[0]
    assert "From: Jörg <jörg@bücher.test>\nX-Tëst: ü\n".encode() in hit[0]
    assert b"with UTF8SMTP" in hit[0]
    # without SMTPUTF8 a UTF-8 address is refused with the right code
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    assert r.cmd("MAIL FROM:<jörg@bücher.test>")[:2] == (553, "5.6.7 Non-ASCII address requires SMTPUTF8")
    r.cmd("QUIT")


def test_ten_megabyte_message(mx):
    line = b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line))
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=60) as c:
        c.sendmail("a@else.test", ["bob@example.test"], body)
    m = by_subject(mx, "bob@example.test", "big")
    assert m.get_payload().encode() == (line * (10 * 1024 * 1024 // len(line))).replace(b"\r\n", b"\n")


def test_size_refused_at_end_of_data(mx):
    body = b"Subject: huge\r\n\r\n" + (b"x" * 998 + b"\r\n") * 13000
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=60) as c:
        c.ehlo()
        c.esmtp_features.pop("size", None)  # don't declare SIZE: the server must still count
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@else.test", ["bob@example.test"], body)
        assert e.value.smtp_code == 552 and e.value.smtp_error.startswith(b"5.3.4")
        assert c.noop()[0] == 250  # still in step with the client


def test_long_text_line_refused(mx):
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    r.cmd("MAIL FROM:<a@else.test>")
    r.cmd("RCPT TO:<bob@example.test>")
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: long\r\n\r\n" + b"y" * 1200 + b"\r\n.\r\n")
    code, text = r.reply()
    assert (code, text[:5]) == (500, "5.5.2")
    r.cmd("QUIT")


def test_recipient_limit(mx):
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    r.cmd("MAIL FROM:<a@else.test>")
    codes = [r.cmd(f"RCPT TO:<bob+{i}@example.test>")[0] for i in range(6)]
    assert codes == [250] * 5 + [452]
    r.cmd("QUIT")


def test_bdat_in_several_chunks_pipelined(mx):
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    part1 = b"Subject: chunks\r\nFrom: a@else.test\r\n\r\n"
    part2 = b"first line\r\n.not stuffed in BDAT\r\n"
    part3 = b"last line\r\n"
    r.send(b"MAIL FROM:<a@else.test>\r\nRCPT TO:<bob@example.test>\r\n"
           + b"BDAT %d\r\n" % len(part1) + part1
           + b"BDAT %d\r\n" % len(part2) + part2
           + b"BDAT %d LAST\r\n" % len(part3) + part3)
    replies = [r.reply() for _ in range(5)]
    assert [c for c, _ in replies] == [250, 250, 250, 250, 250]
    assert "queued as" in replies[-1][1]
    m = by_subject(mx, "bob@example.test", "chunks")
    assert m.get_payload() == "first line\n.not stuffed in BDAT\nlast line\n"
    # BDAT without a transaction: the chunk is consumed, the reply is 503, the session stays in step
    r.send(b"BDAT 5 LAST\r\nhello")
    assert r.reply()[0] == 503
    assert r.cmd("NOOP")[0] == 250
    r.cmd("QUIT")


def test_pipelining_one_group(mx):
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    r.send("MAIL FROM:<a@else.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 550, 354]
    r.send("Subject: piped\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert r.reply()[0] == 250
    assert r.reply()[0] == 221


def test_postmaster_subaddress_alias_and_one_copy(mx):
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"]) as c:
        c.sendmail("a@else.test", ["PostMaster@example.test"], b"Subject: pm\r\n\r\nx\r\n")
        c.sendmail("a@else.test", ["bob+lists@example.test", "bob@example.test", "robert@example.test"],
                   b"Subject: once\r\n\r\nx\r\n")
    by_subject(mx, "carol@example.test", "pm")  # postmaster → the admin account
    m = by_subject(mx, "bob@example.test", "once")  # three addresses, one mailbox, one copy
    assert m["Delivered-To"] == "bob@example.test"
    assert "for <bob+lists@example.test>" in m["Received"]


def test_trace_headers_order(mx):
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"]) as c:
        c.ehlo("client.example")
        c.sendmail("sender@else.test", ["bob@example.test"], b"Subject: trace\r\nReceived: from old\r\n\r\nx\r\n")
    raw = [v for v in raw_files(mx, "bob@example.test").values() if b"Subject: trace" in v][0]
    head = raw.split(b"\n\n")[0].decode()
    lines = head.split("\n")
    assert lines[0] == "Return-Path: <sender@else.test>"
    assert lines[1] == "Delivered-To: bob@example.test"
    assert lines[2].startswith("Received: from client.example (client.example [127.0.0.1])")
    assert "by mx.example.test (courrier) with ESMTP id " in head and "for <bob@example.test>;" in head
    assert "\r" not in raw.decode()  # Maildir files use LF


def test_null_sender_and_dsn_params(mx):
    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    assert r.cmd("MAIL FROM:<> RET=HDRS ENVID=abc+2Bd")[0] == 250
    assert r.cmd("RCPT TO:<bob@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.test")[0] == 250
    assert r.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS")[0] == 501
    r.cmd("QUIT")


def test_too_many_errors_closes(mx):
    r = Raw(mx.ports["smtp"])
    for _ in range(19):
        assert r.cmd("BOGUS")[0] == 500
    code, text = r.cmd("BOGUS")
    assert code == 500
    assert r.reply()[0] == 421
    assert r.closed()


def test_starttls_discards_pipelined_plaintext_and_resets_state(mx):
    """RFC 3207 §4.2 (CVE-2011-0411): commands injected after STARTTLS in the same packet are not executed."""
    import ssl

    r = Raw(mx.ports["smtp"])
    r.cmd("EHLO c.test")
    r.send("STARTTLS\r\nRSET\r\n")
    assert r.reply()[0] == 220
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    r.sock = ctx.wrap_socket(r.sock, server_hostname="mx.example.test")
    r.buf = b""
    # The injected RSET must not answer inside TLS; the session forgot the EHLO (§4.2).
    assert r.cmd("MAIL FROM:<a@else.test>")[0] == 503
    code, text = r.cmd("EHLO c.test")
    assert code == 250 and "STARTTLS" not in text
    assert r.cmd("STARTTLS")[0] == 503
    r.cmd("QUIT")


def test_helo_only_session(mx):
    r = Raw(mx.ports["smtp"])
    assert r.cmd("HELO old.client")[0] == 250
    assert r.cmd("MAIL FROM:<a@else.test> SIZE=10")[0] == 555  # no extensions without EHLO
    assert r.cmd("MAIL FROM:<a@else.test>")[0] == 250
    assert r.cmd("RCPT TO:<bob@example.test>")[0] == 250
    assert r.cmd("DATA")[0] == 354
    r.send("Subject: helo-only\r\n\r\nx\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    assert "with SMTP id" in by_subject(mx, "bob@example.test", "helo-only")["Received"]


def test_auth_plain_authzid_must_match(server_factory):
    """RFC 4616 §2: an authorization identity other than the user is refused (submission role, loopback)."""
    import base64

    s = server_factory("sub", listeners=("submission",))
    s.add_user("bob@example.test", "pw")
    s.start()
    r = Raw(s.ports["submission"])
    r.cmd("EHLO c.test")
    other = base64.b64encode(b"carol@example.test\0bob@example.test\0pw").decode()
    code, text = r.cmd(f"AUTH PLAIN {other}")
    assert (code, text[:5]) == (535, "5.7.8")
    same = base64.b64encode(b"bob@example.test\0bob@example.test\0pw").decode()
    assert r.cmd(f"AUTH PLAIN {same}")[0] == 235
    r.cmd("QUIT")
