"""Scenario 94: a cluster — three `courrier serve` nodes on one private PostgreSQL (tests/pgcluster.py).

Mail taken by SMTP on node 1 is read over IMAP on node 2 and POP3 on node 3; IMAP IDLE on node 2 hears a delivery to
node 1 within a second; kill -9 of a node during a 10-client flood loses and duplicates nothing that got a 250; a
relayed message whose node dies mid-delivery is delivered by another once the lease lapses; with the database
stopped SMTP answers 4xx and IMAP NO [UNAVAILABLE], and service resumes when it is back."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import threading
import time
from email.message import EmailMessage

import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, inbox, make_receiver, point_mx, submit, wait_for
from tests.pgcluster import PgCluster, pg_cluster  # noqa: F401  (the session fixture)
from tests.support import run_cli

USER, PASSWORD = "bob@example.test", "secret"
LISTENERS = ("smtp", "submission", "imap", "pop3")
ALL_USERS = (USER, "alice@example.test")


def make_node(server_factory, dsn: str, name: str, *, listeners=LISTENERS, delivery=None, lease="2s",
              users=()):
    n = server_factory(name, listeners=listeners, domains=("example.test",), hostname=f"{name}.example.test",
                       sections={"store": {"backend": "postgresql", "dsn": dsn, "node": name, "lease": lease,
                                           "timeout": "2s"},
                                 **({"delivery": delivery} if delivery else {})})
    for u in users:  # `courrier user add` on one node: the account exists for every node (shared in PostgreSQL)
        n.add_user(u, PASSWORD)
    return n


def msg(subject: str, to: str = USER) -> bytes:
    m = EmailMessage()
    m["From"] = "sender@remote.test"
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = f"<{subject}@remote.test>"
    m.set_content(f"body of {subject}\n")
    return m.as_bytes()


def send(node, subject: str, to: str = USER) -> None:
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=20) as c:
        c.sendmail("sender@remote.test", [to], msg(subject, to))


def imap(node) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=15)
    c.login(USER, PASSWORD)
    return c


def imap_subjects(node) -> list[str]:
    c = imap(node)
    try:
        c.select("INBOX")
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return sorted(d[1].decode().split(":", 1)[1].strip() for d in data if isinstance(d, tuple))
    finally:
        c.logout()


@pytest.fixture
def dsn(pg_cluster):  # noqa: F811
    return pg_cluster.new_database()


def test_smtp_on_one_node_is_read_on_the_others_and_idle_hears_it(server_factory, dsn):
    n1 = make_node(server_factory, dsn, "n1", users=ALL_USERS).start()
    n2 = make_node(server_factory, dsn, "n2").start()
    n3 = make_node(server_factory, dsn, "n3").start()
    refused = subprocess_start_twice(server_factory, dsn)
    assert "n2" in refused and "another live node" in refused

    send(n1, "first")
    assert imap_subjects(n2) == ["first"]  # visible on every node once the 250 is sent
    p = poplib.POP3("127.0.0.1", n3.ports["pop3"], timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    assert b"Subject: first" in b"\r\n".join(p.retr(1)[1])
    p.quit()

    c = imap(n2)  # IDLE (RFC 2177) on node 2, delivery on node 1
    c.select("INBOX")
    c.send(b"i1 IDLE\r\n")
    assert c.readline().startswith(b"+")
    t0 = time.monotonic()
    send(n1, "second")
    line = c.readline()
    heard = time.monotonic() - t0
    assert line == b"* 2 EXISTS\r\n" and heard < 1.0, (line, heard)
    c.send(b"DONE\r\n")
    while not c.readline().startswith(b"i1 OK"):
        pass
    c1 = imap(n1)  # a session open on node 1, idling
    c1.select("INBOX")
    c1.send(b"i2 IDLE\r\n")
    assert c1.readline().startswith(b"+")
    c.store("1", "+FLAGS", "\\Seen")  # a flag set on node 2 reaches the open session on node 1 (3 s: the contract)
    t0 = time.monotonic()
    line = c1.readline()
    assert line.startswith(b"* 1 FETCH") and b"\\Seen" in line and time.monotonic() - t0 < 3, line
    c1.send(b"DONE\r\n")
    while not c1.readline().startswith(b"i2 OK"):
        pass
    c1.logout()
    c.logout()
    c3 = imap(n3)  # and a new session on node 3
    c3.select("INBOX")
    assert "\\Seen" in c3.fetch("1", "(FLAGS)")[1][0].decode()
    c3.logout()
    # `courrier sendmail` on node 3: its drop goes through the shared queue into the shared mailbox
    run_cli("sendmail", "-i", "-f", "alice@example.test", USER, "--config", str(n3.config),
            input="Subject: dropped\n\nvia sendmail\n")
    wait_for(lambda: "dropped" in imap_subjects(n1), what="the sendmail drop in the INBOX")
    listing = n2.cli("user", "list").stdout  # accounts and their usage, as the shared store counts them
    line = next(x for x in listing.splitlines() if x.startswith(USER))
    assert "used" in line and "used 0" not in line, listing


def subprocess_start_twice(server_factory, dsn: str) -> str:
    """A fourth process named like node 2 is refused in one line (node names are unique among live nodes)."""
    dup = make_node(server_factory, dsn, "n2dup", listeners=("smtp",))
    text = dup.config.read_text().replace('node = "n2dup"', 'node = "n2"')
    dup.config.write_text(text)
    with pytest.raises(AssertionError) as e:
        dup.start(timeout=15)
    return str(e.value)


def test_kill9_during_a_flood_loses_and_duplicates_nothing_acknowledged(server_factory, dsn):
    n1 = make_node(server_factory, dsn, "n1", listeners=("smtp",), users=ALL_USERS).start()
    n2 = make_node(server_factory, dsn, "n2", listeners=("smtp", "imap")).start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        i = 0
        while not stop.is_set():
            subject = f"flood-{k}-{i}"
            i += 1
            try:
                send(n1, subject)
            except (OSError, smtplib.SMTPException):
                if stop.is_set() or n1.proc is None:
                    return
                time.sleep(0.05)
                continue
            with lock:
                acked.append(subject)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 30, timeout=30, what="30 acknowledged messages")
    n1.kill9()
    stop.set()
    for t in threads:
        t.join()
    got = imap_subjects(n2)
    assert len(got) == len(set(got)), "a message stored twice"
    missing = set(acked) - set(got)
    assert not missing, f"{len(missing)} acknowledged messages lost: {sorted(missing)[:5]}"
    n1.start()  # the name is free again at once: the dead node's lock went with its connection
    send(n1, "after restart")
    assert "after restart" in imap_subjects(n2)


class Blackhole:
    """An MX that accepts connections and never says anything: the node delivering to it is stuck mid-delivery."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(10)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_relayed_message_of_a_dead_node_is_delivered_by_another(server_factory, dsn):
    with FakeDNS() as dns:
        b = make_receiver(server_factory, users=("carol",)).start()
        point_mx(dns, "b.test")
        hole = Blackhole()
        try:
            delivery = {"nameservers": [dns.address], **FAST, "connect_timeout": "30s"}
            n1 = make_node(server_factory, dsn, "n1", listeners=("submission",), users=ALL_USERS,
                           delivery={**delivery, "mx_port": hole.port}).start()
            assert submit(n1, "alice@example.test", ["carol@b.test"], "relayed once") == {}
            wait_for(lambda: hole.conns, what="node 1 delivering (stuck at the MX)")
            listing = n1.cli("queue", "list").stdout  # the shared queue, as any node's command sees it
            assert "carol@b.test" in listing, listing
            assert "queue: 1 message" in n1.cli("status").stdout
            n1.kill9()  # dies holding the message's lease
            n2 = make_node(server_factory, dsn, "n2", listeners=("smtp",),
                           delivery={**delivery, "mx_port": b.ports["smtp"]}).start()
            got = wait_for(lambda: inbox(b, "carol@b.test"), timeout=20, what="delivery by node 2")
            assert [str(m["Subject"]) for m in got] == ["relayed once"]
            time.sleep(1)
            assert len(inbox(b, "carol@b.test")) == 1
            n2.wait_log("queue.done")
        finally:
            hole.close()


def test_database_outage_gives_4xx_never_a_lost_message_and_service_resumes(server_factory):
    pg = PgCluster().start()
    try:
        dsn = pg.new_database()
        n1 = make_node(server_factory, dsn, "n1", listeners=("smtp", "imap"), users=ALL_USERS).start()
        send(n1, "before")
        c = imap(n1)
        c.select("INBOX")
        pg.stop()
        with pytest.raises(smtplib.SMTPDataError) as e:
            send(n1, "during")
        assert e.value.smtp_code in (421, 451)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "NO" and b"[UNAVAILABLE]" in data[0], (typ, data)
        n2 = make_node(server_factory, dsn, "n2", listeners=("smtp",))  # a node cannot start without its database
        r = run_cli("serve", "--config", str(n2.config), check=False, timeout=30)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "[store] dsn" in r.stderr, r.stderr
        pg.start()
        time.sleep(0.5)
        send(n1, "after")
        assert imap_subjects(n1) == ["after", "before"]
        c.logout()
    finally:
        pg.destroy()


async def test_web_events_and_list_on_one_node_hear_mail_taken_by_another(server_factory, dsn):
    """/api/events (server mode, an admin watching bob's INBOX) on node 2 hears a message node 1 accepted."""
    import asyncio
    import base64
    import json

    import httpx
    import websockets

    loop = asyncio.get_running_loop()
    n1 = await loop.run_in_executor(None, lambda: make_node(server_factory, dsn, "n1", listeners=("smtp",),
                                                            users=ALL_USERS).start())
    n2 = make_node(server_factory, dsn, "n2", listeners=("http",))
    await loop.run_in_executor(None, lambda: (n2.add_user("admin@example.test", "adminpw", "--admin"), n2.start()))
    auth = "Basic " + base64.b64encode(b"admin@example.test:adminpw").decode()
    url = f"ws://127.0.0.1:{n2.ports['http']}/api/events?mailbox={USER}/INBOX"
    async with websockets.connect(url, additional_headers={"Authorization": auth}) as ws:
        await asyncio.sleep(0.5)  # the socket's watcher takes its first look at the folder after the handshake
        t0 = time.monotonic()
        await loop.run_in_executor(None, send, n1, "seen on the web")
        async with asyncio.timeout(3):  # the contract: other nodes' mail within 3 s
            frame = json.loads(await ws.recv())
        assert frame["Type"] == "new" and frame["Data"]["Subject"] == "seen on the web", frame
        assert time.monotonic() - t0 < 3
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{n2.ports['http']}",
                                 auth=("admin@example.test", "adminpw"), timeout=10) as c:
        listed = (await c.get("/api/v1/messages", params={"mailbox": f"{USER}/INBOX"})).json()
    assert [m["Subject"] for m in listed["messages"]] == ["seen on the web"]
