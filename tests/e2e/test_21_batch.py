"""Scenario 21: ``courrier send --batch`` — mail-merge and load over pooled connections.

1,000 messages to a capture-mode server arrive once each; the docs/batch.md example runs as written; refusals on
the MX role are reported recipient by recipient, and Bcc witnesses get their copies.
"""

import email
import email.policy
import json
import re
import time
from pathlib import Path

from tests.support import Server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "batch.md"


def captured(s: Server, count: int, timeout: float = 30.0) -> list[email.message.EmailMessage]:
    """Every message in the capture Maildir (new/ and cur/), once at least ``count`` are there."""
    deadline = time.monotonic() + timeout
    root = s.data / "capture"
    while True:
        files = [p for sub in ("new", "cur") if (root / sub).exists() for p in (root / sub).iterdir()]
        if len(files) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    parser = email.parser.BytesParser(policy=email.policy.default)
    out = []
    for p in files:
        with open(p, "rb") as f:
            out.append(parser.parse(f, headersonly=True))
    return out


def test_thousand_messages_arrive_once_each(server_factory, tmp_path):
    s = server_factory(capture=True, sections={"capture": {"max_messages": 5000}}).start()
    doc = {"from": "Load <load@example.test>",
           "people": [{"email": f"user{i}@example.test", "first_name": f"U{i}"} for i in range(1000)],
           "templates": [{"subject": "load {n} for {first_name}", "body": "hello {email}\n"}]}
    f = tmp_path / "load.json"
    f.write_text(json.dumps(doc))
    p = s.cli("send", "--batch", str(f), "--server", f"127.0.0.1:{s.ports['smtp']}", "--concurrency", "8",
              check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    m = re.search(r"sent 1000 of 1000 messages \(1000 recipients accepted, 0 refused\), 0 not sent, "
                  r"in [\d.]+ s: ([\d.]+) messages/second", p.stdout)
    assert m, p.stdout
    assert float(m.group(1)) > 0
    msgs = captured(s, 1000)
    subjects = [x["Subject"] for x in msgs]
    assert len(subjects) == 1000
    assert sorted(subjects) == sorted(f"load {i + 1} for U{i}" for i in range(1000))  # each once, none lost


def test_docs_example_runs_against_capture_mode(server_factory, tmp_path):
    block = re.search(r"```json\n(.*?)```", DOCS.read_text(), re.S)
    assert block, "docs/batch.md has no ```json example"
    f = tmp_path / "welcome.json"
    f.write_text(block.group(1))
    s = server_factory(capture=True).start()
    p = s.cli("send", "--batch", str(f), "--server", f"127.0.0.1:{s.ports['smtp']}", check=False)
    assert p.returncode == 0, p.stderr
    assert "sent 6 of 6 messages (14 recipients accepted, 0 refused)" in p.stdout
    msgs = captured(s, 6)
    assert sorted(x["Subject"] for x in msgs) == sorted(
        ["Welcome, Ann!", "Welcome, Bob!", "Welcome, Cid!", "Staff meeting on Monday", "Staff meeting on Monday",
         "Welcome batch sent"])
    ann = next(x for x in msgs if x["Subject"] == "Welcome, Ann!")
    assert ann["To"] == "Ann Lee <ann@example.test>" and ann["From"] == "Courrier Team <team@example.test>"
    assert ann["X-Campaign"] == "welcome" and "Bcc" not in ann and "Cc" not in ann  # the witness: envelope only


def test_refusals_and_witnesses_on_the_mx_role(server_factory, tmp_path):
    s = server_factory()
    for u in ("ann", "bob", "archive"):
        s.add_user(f"{u}@example.test")
    s.start()
    doc = {"from": "news@else.test", "bcc": ["archive@example.test"],
           "people": [{"email": "ann@example.test", "first_name": "Ann"},
                      {"email": "ghost@example.test", "first_name": "Ghost"},
                      {"email": "bob@example.test", "first_name": "Bob"}],
           "templates": [{"subject": "hi {first_name}", "body": "x"}],
           "messages": [{"to": "nobody@else.test", "subject": "relay attempt"}]}
    f = tmp_path / "b.json"
    f.write_text(json.dumps(doc))
    p = s.cli("send", "--batch", str(f), "--server", f"127.0.0.1:{s.ports['smtp']}", "--concurrency", "2",
              check=False)
    assert p.returncode == 1
    assert "sent 4 of 4 messages (6 recipients accepted, 2 refused), 0 not sent" in p.stdout
    assert "templates[0] → ghost@example.test: ghost@example.test: 550 5.1.1" in p.stderr
    assert "messages[0]: nobody@else.test: 554 5.7.1" in p.stderr
    assert p.stderr.strip().splitlines()[-1] == "courrier: 0 messages not sent, 2 recipients refused"
    witness = s.stored("archive@example.test")
    assert len(witness) == 4  # one copy of each message, including those whose other recipient was refused
    doc["bcc"] = []
    f.write_text(json.dumps(doc))
    p = s.cli("send", "--batch", str(f), "--server", f"127.0.0.1:{s.ports['smtp']}", check=False)
    assert p.returncode == 1
    assert "sent 2 of 4 messages (2 recipients accepted, 2 refused), 2 not sent" in p.stdout
    assert "messages[0]: every recipient refused — nobody@else.test: 554 5.7.1" in p.stderr


def test_bad_document_sends_nothing(server_factory, tmp_path):
    s = server_factory(capture=True).start()
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"from": "a@example.test", "people": [{"email": "x@example.test"}],
                             "templates": [{"subject": "Hi {nickname}"}]}))
    p = s.cli("send", "--batch", str(f), "--server", f"127.0.0.1:{s.ports['smtp']}", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ("courrier: templates[0] → x@example.test.subject: unknown field {nickname} "
                                "(known: email, n, name)")
    assert captured(s, 1, timeout=0.3) == []


def test_pooled_authenticated_connections_through_submission(server_factory, tmp_path):
    s = server_factory(listeners=("submission",))
    s.add_user("news@example.test", "newspw")
    s.add_user("ann@example.test")
    s.start()
    doc = {"from": "News <news@example.test>",
           "messages": [{"to": "ann@example.test", "subject": f"pooled {i}"} for i in range(30)]}
    f = tmp_path / "b.json"
    f.write_text(json.dumps(doc))
    p = s.cli("send", "--batch", str(f), "--server", f"127.0.0.1:{s.ports['submission']}", "--starttls",
              "--user", "news@example.test", "--password-stdin", "--concurrency", "3", input="newspw\n", check=False)
    assert p.returncode == 0, p.stderr
    assert "sent 30 of 30 messages" in p.stdout
    log = s.log()
    assert log.count(" smtp.auth ") == 3 and log.count(" smtp.tls ") == 3  # three connections, each reused
    subjects = []
    for m in s.stored("ann@example.test"):
        subjects.append(email.message_from_bytes(m.data, policy=email.policy.default)["Subject"])
    assert sorted(subjects) == sorted(f"pooled {i}" for i in range(30))
