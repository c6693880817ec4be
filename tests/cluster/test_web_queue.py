"""The web API's queue view on a cluster node shows the shared queue: a message node 1 accepted for relay (and could
not send yet) is listed, with its delivery attempt, by node 2's ``/api/courrier/queue``."""

from __future__ import annotations

import smtplib

import httpx

from tests.e2e.mta_helpers import wait_for
from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)
from tests.support import free_port

USER, PASSWORD = "ann@example.test", "secret"


def test_the_web_queue_view_of_a_node_shows_what_another_node_queued(server_factory, pg_cluster):  # noqa: F811
    dsn = pg_cluster.new_database()
    store = {"backend": "postgresql", "dsn": dsn}
    n1 = server_factory("n1", listeners=("submission",), domains=("example.test",),
                        sections={"store": {**store, "node": "n1"},
                                  "delivery": {"retry_first": "1h", "smarthost": f"127.0.0.1:{free_port()}"}})
    n1.add_user(USER, PASSWORD)
    n1.add_user("admin@example.test", "adminpw", "--admin")
    n1.start()
    n2 = server_factory("n2", listeners=("http",), domains=("example.test",),
                        sections={"store": {**store, "node": "n2"}, "delivery": {"retry_first": "1h"}}).start()
    with smtplib.SMTP("127.0.0.1", n1.ports["submission"], timeout=10) as s:
        s.login(USER, PASSWORD)
        s.sendmail(USER, ["someone@remote.test"], f"From: {USER}\r\nSubject: queued\r\n\r\nwaiting\r\n".encode())
    wait_for(lambda: "queue.deferred" in n1.log(), what="node 1's first attempt")
    with httpx.Client(base_url=f"http://127.0.0.1:{n2.ports['http']}", auth=("admin@example.test", "adminpw"),
                      timeout=10) as c:
        rows = c.get("/api/courrier/queue").json()
        assert [(r["Sender"], [x["Address"] for x in r["Recipients"]]) for r in rows] == [
            (USER, ["someone@remote.test"])], rows
        entry = c.get(f"/api/courrier/queue/{rows[0]['QueueID']}").json()
    assert entry["Entry"]["Attempts"] == 1 and entry["Entry"]["LastError"], entry
    assert [a["Result"] for a in entry["Attempts"]] and entry["Attempts"][0]["Result"] != "", entry
