"""Scenario 12: retention — `max_messages` keeps the newest, `max_age` removes old messages while the server runs."""

import time

from tests.e2e.capture_support import capture_server, envelopes, files, send

MSG = b"Subject: r\r\n\r\nx\r\n"


def test_max_messages_prunes_the_oldest(server_factory):
    srv = capture_server(server_factory, max_messages=3)
    srv.start()
    ids = [send(srv.ports["smtp"], ["a@b.test"], MSG) for _ in range(5)]
    deadline = time.time() + 10  # retention runs as each message is indexed, just after its 250
    while len(files(srv.data)) > 3 and time.time() < deadline:
        time.sleep(0.02)
    assert set(envelopes(srv.data)) == set(ids[2:])
    srv.stop()


def test_max_age_prunes_in_the_background(server_factory):
    srv = capture_server(server_factory, max_age="2s")
    srv.start()
    send(srv.ports["smtp"], ["a@b.test"], MSG)
    assert len(files(srv.data)) == 1
    deadline = time.time() + 15
    # the files go first, then the log line is written: wait for both
    while (files(srv.data) or "capture.pruned count=1" not in srv.log()) and time.time() < deadline:
        time.sleep(0.2)
    assert files(srv.data) == []
    srv.wait_log("capture.pruned count=1")
    srv.stop()
