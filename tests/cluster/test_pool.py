"""A node's connections to PostgreSQL are one pool bounded as a whole (``[store] pool_size``): under a flood of SMTP
sessions, IMAP readers and a queued relay, pg_stat_activity never shows more connections of the node than the bound
(plus its notification connection, apart), and every message that got a 250 is stored."""

from __future__ import annotations

import imaplib
import smtplib
import threading
import time

import psycopg

from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)
from tests.support import free_port

USER, PASSWORD = "flo@example.test", "secret"
BOUND = 3


def test_a_node_never_opens_more_connections_than_its_pool_size_under_a_flood(server_factory, pg_cluster):  # noqa: F811
    dsn = pg_cluster.new_database()
    node = server_factory("n1", listeners=("smtp", "submission", "imap"), domains=("example.test",),
                          sections={"store": {"backend": "postgresql", "dsn": dsn, "node": "n1", "pool_size": BOUND},
                                    "delivery": {"retry_first": "1h", "smarthost": f"127.0.0.1:{free_port()}"}})
    node.add_user(USER, PASSWORD)
    node.start()
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            while not stop.is_set():
                seen.append(c.execute(
                    "SELECT count(*) FILTER (WHERE application_name = 'courrier n1'), "
                    "count(*) FILTER (WHERE application_name = 'courrier n1 listen') FROM pg_stat_activity "
                    "WHERE datname = current_database()").fetchone())
                time.sleep(0.01)

    accepted = []

    def send(k: int) -> None:
        with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30) as s:
            for i in range(8):
                s.sendmail("x@remote.test", [USER], f"Subject: {k}-{i}\r\n\r\nbody\r\n".encode())
                accepted.append((k, i))

    def read() -> None:
        c = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=30)
        c.login(USER, PASSWORD)
        for _ in range(15):
            c.select("INBOX")
            c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER])")
            c.noop()
        c.logout()

    def relay() -> None:
        with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=30) as s:
            s.login(USER, PASSWORD)
            for i in range(5):
                s.sendmail(USER, [f"r{i}@remote.test"], f"From: {USER}\r\nSubject: r{i}\r\n\r\nx\r\n".encode())

    w = threading.Thread(target=watch)
    w.start()
    ts = ([threading.Thread(target=send, args=(k,)) for k in range(20)] + [threading.Thread(target=read)
                                                                           for _ in range(3)]
          + [threading.Thread(target=relay)])
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    w.join()
    assert len(accepted) == 160
    assert max(n for n, _ in seen) <= BOUND, max(seen)
    assert max(n for n, _ in seen) >= 2 and all(listen == 1 for _, listen in seen)  # the pool was used, and shared
    c = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
    c.login(USER, PASSWORD)
    assert int(c.select("INBOX")[1][0]) == 160
    c.logout()
