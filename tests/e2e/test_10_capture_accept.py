"""Scenario 10: `courrier serve --capture` accepts every recipient on smtp, submission and submissions (any
credentials), keeps each message once with its envelope, and relays nothing."""

import smtplib
import socket
import ssl
import threading

from tests.e2e.capture_support import capture_server, envelopes, files, open_store, send

MSG = b"From: App <app@sender.test>\r\nTo: someone@anywhere.example\r\nSubject: welcome\r\n\r\nHello!\r\n"


def test_any_recipient_kept_once_nothing_relayed(server_factory):
    # A would-be relay: if capture mode ever relayed, it would connect here.
    relay = socket.socket()
    relay.bind(("127.0.0.1", 0))
    relay.listen(5)
    relay.settimeout(0.2)
    hits = []

    def watch():
        while True:
            try:
                c, _ = relay.accept()
                hits.append(c)
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=watch, daemon=True).start()
    srv = capture_server(server_factory, listeners=("smtp", "submission", "submissions"))
    srv_cfg = srv.config.read_text() + f'\n[delivery]\nsmarthost = "127.0.0.1:{relay.getsockname()[1]}"\n'
    srv.config.write_text(srv_cfg)
    srv.start()
    try:
        rcpts = ["someone@anywhere.example", "x+promo@gmail.com", "postmaster@[192.0.2.1]"]
        id1 = send(srv.ports["smtp"], rcpts, MSG)

        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as c:
            c.starttls(context=ctx)
            c.login("anyone", "any password")
            assert c.sendmail("dev@sender.test", ["boss@corp.example"], MSG) == {}
        with smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], timeout=10, context=ctx) as c:
            c.login("whoever@wherever", "x")
            assert c.sendmail("dev@sender.test", ["b@c.example"], MSG) == {}

        envs = envelopes(srv.data)
        assert len(files(srv.data)) == 3  # each message once, whatever its number of recipients
        e1 = envs[id1]
        assert e1.rcpts == rcpts and e1.mail_from == "app@sender.test" and e1.helo == "app.test"
        assert e1.client_ip == "127.0.0.1" and e1.tls is None and e1.tags == ["promo"]
        by_listener = {e.listener: e for e in envs.values()}
        assert by_listener["submission"].tls.startswith("TLSv1.") and by_listener["submission"].user == "anyone"
        assert by_listener["submissions"].user == "whoever@wherever"

        store = open_store(srv.data, expect=3)
        try:
            s = store.summary(id1)
            assert s.tags == ["promo"] and s.subject == "welcome"
            assert [a.address for a in s.bcc] == rcpts[1:]  # envelope recipients in no To/Cc header
            assert store.counts() == (3, 3)
        finally:
            store.close()
        for spool in ("queue", "mail"):  # no outbound queue entry, no local delivery
            assert [p for p in (srv.data / spool).rglob("*") if p.is_file()] == []
    finally:
        srv.stop()
        relay.close()
    assert hits == []
