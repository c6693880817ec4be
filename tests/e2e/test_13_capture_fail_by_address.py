"""Scenario 13: `[capture] fail_by_address` — what smtplib sees for tempfail…@, permfail…@, timeout…@ and
disconnect…@ (and that the same addresses are accepted when the switch is off)."""

import smtplib

import pytest

from tests.e2e.capture_support import capture_server, files


@pytest.fixture
def srv(server_factory):
    return capture_server(server_factory, fail_by_address=True).start()


def session(srv, timeout=10):
    c = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=timeout)
    c.ehlo("app.test")
    assert c.mail("a@sender.test")[0] == 250
    return c


def test_tempfail_and_permfail(srv):
    with session(srv) as c:
        assert c.rcpt("tempfail@x.test") == (451, b"4.3.0 Temporary failure requested by the recipient address")
        code, text = c.rcpt("permfail-42@x.test")
        assert (code, text[:5]) == (550, b"5.1.1")
        assert c.rcpt("ok@x.test")[0] == 250
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
            c.sendmail("a@sender.test", ["TempFail@x.test", "permfail@x.test"], b"Subject: s\r\n\r\nx\r\n")
    assert {k: v[0] for k, v in e.value.recipients.items()} == {"TempFail@x.test": 451, "permfail@x.test": 550}
    assert files(srv.data) == []


def test_timeout_gets_no_answer(srv):
    c = session(srv, timeout=1)
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):  # smtplib's read timer fired
        c.rcpt("timeout@x.test")
    c.close()


def test_disconnect_drops_the_connection(srv):
    c = session(srv)
    with pytest.raises(smtplib.SMTPServerDisconnected) as e:
        c.rcpt("disconnect-now@x.test")
    assert "timed out" not in str(e.value)  # closed by the server at once, not a timeout
    c.close()
    # the server itself is fine
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        assert c.sendmail("a@sender.test", ["ok@x.test"], b"Subject: s\r\n\r\nx\r\n") == {}
    assert len(files(srv.data)) == 1


def test_switch_off_accepts_them(server_factory):
    srv = capture_server(server_factory).start()
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        rcpts = ["tempfail@x.test", "permfail@x.test", "timeout@x.test", "disconnect@x.test"]
        assert c.sendmail("a@sender.test", rcpts, b"Subject: s\r\n\r\nx\r\n") == {}
    assert len(files(srv.data)) == 1
