"""Scenario 06: the inspector's "pause incoming" switch holds the MX role too (server mode): MAIL → 451 4.3.2."""

import smtplib

import httpx
import pytest


def test_pause_switch_in_server_mode(server_factory):
    mx = server_factory(listeners=("smtp", "http"))
    mx.add_user("admin@example.test", "adminpw", "--admin")
    mx.add_user("bob@example.test")
    mx.start()
    api = f"http://127.0.0.1:{mx.ports['http']}/api/courrier/pause"
    auth = ("admin@example.test", "adminpw")
    r = httpx.put(api, json={"Paused": True}, auth=auth, timeout=10)
    assert r.status_code == 200 and r.json() == {"Paused": True}
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=10) as c:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("a@else.test", ["bob@example.test"], b"Subject: paused\r\n\r\nx\r\n")
        assert e.value.smtp_code == 451 and e.value.smtp_error.startswith(b"4.3.2")
    assert httpx.put(api, json={"Paused": False}, auth=auth, timeout=10).json() == {"Paused": False}
    with smtplib.SMTP("127.0.0.1", mx.ports["smtp"], timeout=10) as c:
        assert c.sendmail("a@else.test", ["bob@example.test"], b"Subject: resumed\r\n\r\nx\r\n") == {}
    assert httpx.put(api, json={"Paused": True}, auth=("bob@example.test", "secret"), timeout=10).status_code in (
        401, 403)
