"""Scenario 95: what the nodes of a cluster share besides mail (tests/pgcluster.py, two `courrier serve` nodes).

A Sieve script put with the real ManageSieve client ``sieve-connect`` on node 1 files the mail node 2 takes by
SMTP (smtplib), read back over IMAP (imaplib); its vacation reply goes out once although two nodes delivered; the
``courrier sieve`` command of node 2 finds the account and the script in the cluster. Wrong passwords spread over
two nodes and three protocols spend one budget. The delivery history of a message node 1 relayed is read on node 2
with ``courrier queue show`` and the web API. An MTA-STS policy (enforce) node 1 fetched holds on node 2, which
cannot fetch it."""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import poplib
import smtplib
import subprocess
import time

import httpx
import pytest

from tests.dnsfake import FakeDNS
from tests.e2e.mta_helpers import FAST, inbox, make_receiver, point_mx, submit, wait_for
from tests.pgcluster import pg_cluster  # noqa: F401  (the session fixture)
from tests.testca import PolicyServer, TestCA

ME, BOB, PASSWORD = "me@example.test", "bob@example.test", "secret"
SCRIPT = r"""require ["fileinto", "mailbox", "vacation", "variables"];
if header :matches "subject" "[*] *" {
    fileinto :create "Lists.${1}";
    stop;
}
vacation :days 1 :subject "Away until Monday" "I am away; your mail will wait.";
"""


def node(server_factory, dsn: str, name: str, listeners: tuple[str, ...], users=(), **sections):
    n = server_factory(name, listeners=listeners, domains=("example.test",), hostname=f"{name}.example.test",
                       sections={"store": {"backend": "postgresql", "dsn": dsn, "node": name, "timeout": "2s"},
                                 **sections})
    for u in users:
        n.add_user(u, PASSWORD)
    return n


@pytest.fixture
def dsn(pg_cluster):  # noqa: F811
    return pg_cluster.new_database()


def sieve_connect(n, *args: str, cwd) -> subprocess.CompletedProcess[str]:
    r, w = os.pipe()
    os.write(w, (PASSWORD + "\n").encode())
    os.close(w)
    try:
        return subprocess.run(["sieve-connect", "-s", "127.0.0.1", "-p", str(n.ports["managesieve"]), "-u", ME,
                               "--passwordfd", str(r), "--notlsverify", *args], pass_fds=(r,), cwd=cwd,
                              capture_output=True, text=True, timeout=30)
    finally:
        os.close(r)


def send(n, subject: str, sender: str = BOB) -> None:
    msg = (f"From: Bob <{sender}>\r\nTo: Me <{ME}>\r\nSubject: {subject}\r\n"
           f"Message-ID: <{abs(hash(subject))}@example.test>\r\n\r\nHello.\r\n")
    with smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=10) as s:
        s.sendmail(sender, [ME], msg)


def subjects(n, user: str, folder: str) -> list[str]:
    c = imaplib.IMAP4("127.0.0.1", n.ports["imap"], timeout=10)
    try:
        c.login(user, PASSWORD)
        typ, _ = c.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            return []
        _, data = c.fetch("1:*", "(BODY.PEEK[HEADER])")
        return sorted(str(email.message_from_bytes(d[1], policy=email.policy.default)["Subject"])
                      for d in data if isinstance(d, tuple))
    finally:
        c.logout()


def test_a_script_put_on_node_1_filters_what_node_2_delivers_and_vacation_answers_once(server_factory, dsn,
                                                                                        tmp_path):
    n1 = node(server_factory, dsn, "n1", ("smtp", "imap", "managesieve"), users=(ME, BOB)).start()
    n2 = node(server_factory, dsn, "n2", ("smtp", "imap")).start()
    send(n2, "before the script")  # node 2 has now looked for (and cached) "no active script"

    (tmp_path / "filter.sieve").write_text(SCRIPT)
    up = sieve_connect(n1, "--upload", "--localsieve", "filter.sieve", "--remotesieve", "filter", cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    act = sieve_connect(n1, "--activate", "--remotesieve", "filter", cwd=tmp_path)
    assert act.returncode == 0, act.stdout + act.stderr
    time.sleep(1.1)  # each node looks for other nodes' script changes at most once a second

    send(n2, "[dev] the build is green")  # taken by node 2, filed by the script node 1 stored
    assert subjects(n1, ME, "Lists.dev") == ["[dev] the build is green"]

    send(n1, "lunch?")  # RFC 5230 §4.2: one reply per sender within :days, whichever node delivers
    send(n2, "lunch? (again)")
    assert subjects(n2, ME, "INBOX") == ["before the script", "lunch?", "lunch? (again)"]
    assert wait_for(lambda: subjects(n2, BOB, "INBOX"), what="the vacation reply") == ["Away until Monday"]
    wait_for(lambda: "queue is empty" in n2.cli("queue", "list").stdout, what="an empty queue")  # no reply pending
    assert subjects(n1, BOB, "INBOX") == ["Away until Monday"]

    listing = n2.cli("sieve", "list", ME.upper())  # node 2's command: the cluster's account and script
    assert listing.stdout.split() == ["filter", str(len(SCRIPT)), "active"], listing.stdout
    assert n2.cli("sieve", "get", ME, "filter").stdout == SCRIPT
    missing = n2.cli("sieve", "list", "nobody@example.test", check=False)
    assert missing.returncode == 1 and "no account nobody@example.test" in missing.stderr


def imap_login(n, password: str) -> tuple[str, bytes]:
    c = imaplib.IMAP4("127.0.0.1", n.ports["imap"], timeout=10)
    try:
        return "OK", c.login(ME, password)[1][0]
    except imaplib.IMAP4.error as e:
        return "NO", str(e).encode()
    finally:
        try:
            c.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def smtp_auth(n, password: str) -> int:
    with smtplib.SMTP("127.0.0.1", n.ports["submission"], timeout=10) as c:
        c.ehlo("mua.test")
        c.user, c.password = ME, password
        try:
            return c.auth("PLAIN", c.auth_plain)[0]
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code


def pop3_login(n, password: str) -> bytes:
    p = poplib.POP3("127.0.0.1", n.ports["pop3"], timeout=10)
    try:
        p.user(ME)
        return p.pass_(password)
    except poplib.error_proto as e:
        return e.args[0]
    finally:
        p.close()


def test_wrong_passwords_spread_over_two_nodes_spend_one_budget(server_factory, dsn):
    """Four failures allowed per client: two on each node (IMAP, SMTP AUTH, POP3), none of which locks a node on its
    own; then the right password is refused unchecked on both (the contract's "try later" answers)."""
    limits = {"auth_failures_per_ip": 4}
    n1 = node(server_factory, dsn, "n1", ("imap", "submission"), users=(ME,), limits=limits).start()
    n2 = node(server_factory, dsn, "n2", ("imap", "pop3", "submission"), limits=limits).start()
    assert imap_login(n2, PASSWORD)[0] == "OK"  # the account works on node 2
    assert imap_login(n1, "wrong-1")[0] == "NO"
    assert pop3_login(n2, "wrong-2").startswith(b"-ERR")
    assert smtp_auth(n1, "wrong-3") == 535
    assert imap_login(n2, "wrong-4")[0] == "NO"
    typ, text = imap_login(n2, PASSWORD)
    assert typ == "NO" and b"UNAVAILABLE" in text, text
    assert smtp_auth(n1, PASSWORD) == 454  # RFC 4954 §4: 454 4.7.0, not 535
    assert smtp_auth(n2, PASSWORD) == 454
    assert pop3_login(n2, PASSWORD).startswith(b"-ERR [SYS/TEMP]")
    checks = n1.log().count("auth.check") + n2.log().count("auth.check")
    assert checks == 5, checks  # the right passwords after the lock were never checked


def test_the_delivery_history_of_node_1_is_read_on_node_2(server_factory, dsn):
    with FakeDNS() as dns:
        b = make_receiver(server_factory, users=("carol",)).start()
        point_mx(dns, "b.test")
        delivery = {"nameservers": [dns.address], **FAST, "mx_port": b.ports["smtp"]}
        n1 = node(server_factory, dsn, "n1", ("submission",), users=("alice@example.test",),
                  delivery=delivery).start()
        n2 = node(server_factory, dsn, "n2", ("http",), delivery=delivery)
        n2.add_user("admin@example.test", "adminpw", "--admin")
        n2.start()
        assert submit(n1, "alice@example.test", ["carol@b.test"], "relayed by node 1") == {}
        wait_for(lambda: inbox(b, "carol@b.test"), what="delivery by node 1")
        with httpx.Client(base_url=f"http://127.0.0.1:{n2.ports['http']}", auth=("admin@example.test", "adminpw"),
                          timeout=10) as c:
            log = wait_for(lambda: c.get("/api/courrier/delivery-log").json(), what="the attempt in the log")
            [entry] = log
            assert (entry["Node"], entry["Result"], entry["Recipients"], entry["Code"]) == (
                "n1", "sent", "carol@b.test", 250), entry
            qid = entry["QueueID"]
            one = c.get(f"/api/courrier/queue/{qid}").json()
            assert [a["Result"] for a in one["Attempts"]] == ["sent"]
        shown = n2.cli("queue", "show", qid).stdout  # node 2's command reads the cluster's log
        assert f"{qid} (no longer queued)" in shown and "sent" in shown and "carol@b.test" in shown, shown


def test_an_mta_sts_policy_fetched_by_node_1_holds_on_node_2(server_factory, dsn, tmp_path):
    """RFC 8461 §5.1 across nodes: node 1 fetched c.test's enforce policy (its MX is not listed); node 1 stops, the
    policy host answers 404 from then on, and node 2 — which never fetched it — still keeps the message queued."""
    ca = TestCA()
    cert, key = ca.issue(["mx.c.test"]).write(tmp_path / "pki", "mx")
    with FakeDNS() as dns, PolicyServer(ca, ["mta-sts.c.test"], tmp_path / "web") as web:
        b = server_factory("b", listeners=("smtp",), domains=("c.test",), hostname="mx.c.test",
                           sections={"tls": {"cert": str(cert), "key": str(key)}})
        b.add_user("bob@c.test")
        b.start()
        point_mx(dns, "c.test")
        dns.set("mta-sts.c.test", {"A": ["127.0.0.1"]})
        dns.set("_mta-sts.c.test", {"TXT": ["v=STSv1; id=20260101"]})
        web.serve("version: STSv1\nmode: enforce\nmx: other.c.test\nmax_age: 86400\n", host="mta-sts.c.test")
        delivery = {"nameservers": [dns.address], "mx_port": b.ports["smtp"], **FAST, "mta_sts_port": web.port,
                    "tls_ca_file": str(ca.write(tmp_path / "trust"))}
        n1 = node(server_factory, dsn, "n1", ("submission",), users=("alice@example.test",), delivery=delivery).start()
        assert submit(n1, "alice@example.test", ["bob@c.test"], "held by the policy") == {}
        wait_for(lambda: "not listed in the MTA-STS policy of c.test" in n1.log(), what="node 1's deferral")
        n1.wait_log("mta_sts.policy domain=c.test")
        n1.stop()
        web.reply, web.by_host = (404, {}, b""), {}  # nothing served any more: only the shared cache says "enforce"
        n2 = node(server_factory, dsn, "n2", ("submission",), delivery=delivery).start()
        line = wait_for(lambda: next((x for x in n2.log().splitlines()
                                      if "delivery.deferred" in x or "delivery.sent" in x), None),
                        what="node 2's attempt")
        assert "not listed in the MTA-STS policy of c.test" in line and "tls_policy=mta-sts-enforce" in line, line
        assert "mta_sts.policy" not in n2.log() and inbox(b, "bob@c.test") == []
