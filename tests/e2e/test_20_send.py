"""Scenario 20: ``courrier send`` — the sending MUA and swaks-like client — against courrier itself and smtp-sink.

What arrives is read back from the recipient's Maildir with the stdlib ``email`` parser and compared with what was
asked: HTML alternative, attachments byte for byte, encoded words, header From vs envelope sender.
"""

import email
import email.policy
import time

import pytest

from courrier.client.smtpclient import SMTPClient
from tests.client.sink import dumped, smtp_sink
from tests.support import run_cli


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_store):
    from tests.support import Server

    s = Server(tmp_path_factory.mktemp("send"), listeners=("smtp", "submission", "submissions"))
    s.add_user("bob@example.test", "bobpw")
    s.add_user("carol@example.test", "carolpw")
    s.start()
    yield s
    s.stop()


def delivered(s, address, count=1, timeout=10.0):
    """Messages in the account's INBOX (whatever the store), parsed, once at least ``count`` are there (newest last)."""
    deadline = time.monotonic() + timeout
    while True:
        got = s.stored(address)
        if len(got) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return [email.message_from_bytes(m.data, policy=email.policy.default) for m in got]


def send(s, *args, **kw):
    return s.cli("send", "--server", f"127.0.0.1:{s.ports['smtp']}", *args, check=False, **kw)


def test_trace_against_courrier_mx(srv):
    p = send(srv, "--from", "alice@else.test", "--to", "bob@example.test", "--subject", "traced", "--body", "hi",
             "--trace")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    dialogue = [line for line in out if line[:3] in ("C: ", "S: ")]
    assert dialogue[0] == "S: 220 mx.example.test ESMTP courrier"
    assert dialogue[1].startswith("C: EHLO ")
    assert "S: 250-PIPELINING" in dialogue
    assert "C: MAIL FROM:<alice@example.test>" not in dialogue
    assert any(line.startswith("C: MAIL FROM:<alice@else.test>") for line in dialogue)
    assert "C: RCPT TO:<bob@example.test>" in dialogue and "S: 354 End data with <CR><LF>.<CR><LF>" in dialogue
    assert "C: Subject: traced" in dialogue and "C: ." in dialogue
    assert any(line.startswith("S: 250 2.0.0 ") for line in dialogue)
    assert dialogue[-2:] == ["C: QUIT", "S: 221 2.0.0 Bye"]
    assert out[-1].startswith("sent to 1 recipient via 127.0.0.1:")
    assert any(m["Subject"] == "traced" for m in delivered(srv, "bob@example.test"))


def test_html_and_attachments_arrive_as_asked(srv, tmp_path):
    html = tmp_path / "page.html"
    html.write_text("<html><body><h1>Résumé</h1><p>Voilà <b>bold</b></p></body></html>", encoding="utf-8")
    pdf = tmp_path / "facture été.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40)
    txt = tmp_path / "notes.txt"
    txt.write_bytes(b"line one\r\n.line two starts with a dot\r\n")
    p = send(srv, "--from", "Zoë <zoe@else.test>", "--to", "Carol <carol@example.test>", "--cc", "bob@example.test",
             "--subject", "Ünïcode subject ✓", "--body", "Plain part, ça marche.", "--html-file", str(html),
             "--attach", str(pdf), "--attach", str(txt))
    assert p.returncode == 0, p.stderr
    m = next(m for m in delivered(srv, "carol@example.test") if m["Subject"] == "Ünïcode subject ✓")
    assert m["From"].addresses[0].display_name == "Zoë" and m["Cc"] == "bob@example.test"
    assert m["Date"].datetime is not None and m["Message-ID"].endswith("@else.test>")
    assert m.get_content_type() == "multipart/mixed"
    assert m.get_body(("plain",)).get_content().strip() == "Plain part, ça marche."
    assert "<h1>Résumé</h1>" in m.get_body(("html",)).get_content()
    atts = {a.get_filename(): a for a in m.iter_attachments()}
    assert set(atts) == {"facture été.pdf", "notes.txt"}
    assert atts["facture été.pdf"].get_content_type() == "application/pdf"
    assert atts["facture été.pdf"].get_content() == pdf.read_bytes()
    assert atts["notes.txt"].get_content().replace("\r\n", "\n") == "line one\n.line two starts with a dot\n"
    assert any(x["Subject"] == "Ünïcode subject ✓" for x in delivered(srv, "bob@example.test"))  # the Cc copy


def test_header_from_differs_from_envelope_sender(srv):
    """The SMTP story's forged-mail demonstration: the MX role sees one sender, the reader another."""
    p = send(srv, "--from", "alice@else.test", "--envelope-from", "bounces@else.test", "--to", "bob@example.test",
             "--header", "From: The CEO <ceo@bank.test>", "--header", "X-Demo: forged", "--subject", "forged")
    assert p.returncode == 0, p.stderr
    m = next(m for m in delivered(srv, "bob@example.test") if m["Subject"] == "forged")
    assert m["From"] == "The CEO <ceo@bank.test>" and len(m.get_all("From")) == 1
    assert m["Return-Path"] == "<bounces@else.test>"
    assert m["X-Demo"] == "forged"


def test_refusals_exit_1_with_the_servers_replies(srv):
    p = send(srv, "--from", "alice@else.test", "--to", "bob@example.test", "--to", "ghost@example.test",
             "--subject", "partly")
    assert p.returncode == 1
    assert "REFUSED  ghost@example.test: 550 5.1.1" in p.stderr
    assert "accepted bob@example.test: 250" in p.stderr
    assert p.stderr.strip().splitlines()[-1] == "courrier: 1 of 2 recipients refused"
    assert any(m["Subject"] == "partly" for m in delivered(srv, "bob@example.test"))
    p = send(srv, "--from", "alice@else.test", "--to", "someone@else.test")  # the MX role never relays
    assert p.returncode == 1 and "554 5.7.1" in p.stderr and "refused every recipient" in p.stderr
    assert "Traceback" not in p.stderr


def test_eml_is_sent_as_is(srv, tmp_path):
    raw = (b"From: Odd <odd@else.test>\nTo: bob@example.test\nSubject: as is\nX-Weird:   spaces kept  \n"
           b"Message-ID: <fixed-1@else.test>\n\n.leading dot\nbody\n")
    f = tmp_path / "m.eml"
    f.write_bytes(raw)
    p = send(srv, "--eml", str(f))
    assert p.returncode == 0, p.stderr
    stored = [m.data for m in srv.stored("bob@example.test")]
    assert sum(1 for b in stored if b.endswith(raw)) == 1  # untouched, after the trace headers the server prepends
    m = next(m for m in delivered(srv, "bob@example.test") if m["Subject"] == "as is")
    assert m["Return-Path"] == "<odd@else.test>"


def test_submission_starttls_auth_end_to_end(srv):
    sub = f"127.0.0.1:{srv.ports['submission']}"
    p = srv.cli("send", "--server", sub, "--starttls", "--user", "bob@example.test", "--password-stdin",
                "--from", "bob@example.test", "--to", "carol@example.test", "--subject", "via msa", "--trace",
                input="bobpw\n", check=False)
    assert p.returncode == 0, p.stderr
    assert "C: STARTTLS" in p.stdout and "S: 220 2.0.0 Ready to start TLS" in p.stdout
    assert "C: AUTH PLAIN ********" in p.stdout and "S: 235 2.7.0 Authentication successful" in p.stdout
    assert p.stdout.index("C: AUTH") > p.stdout.index("C: STARTTLS")
    assert "bobpw" not in p.stdout and "Ym9icHc" not in p.stdout and "AGJvYnB3" not in p.stdout
    assert any(m["Subject"] == "via msa" for m in delivered(srv, "carol@example.test"))
    p = srv.cli("send", "--server", sub, "--starttls", "--user", "bob@example.test", "--password-stdin",
                "--from", "bob@example.test", "--to", "carol@example.test", input="wrong\n", check=False)
    assert p.returncode == 1 and "refused AUTH: 535 5.7.8" in p.stderr


def test_implicit_tls_and_default_server_from_config(srv):
    # no --server: --tls picks this configuration's submissions listener
    p = srv.cli("send", "--tls", "--user", "carol@example.test", "--password-stdin", "--from", "carol@example.test",
                "--to", "bob@example.test", "--subject", "implicit tls", input="carolpw\n", check=False)
    assert p.returncode == 0, p.stderr
    assert f"via 127.0.0.1:{srv.ports['submissions']} (TLS)" in p.stdout
    assert any(m["Subject"] == "implicit tls" for m in delivered(srv, "bob@example.test"))


async def test_auth_login_masks_both_secrets(srv):
    lines = []
    c = await SMTPClient.connect("127.0.0.1", srv.ports["submission"],
                                 trace=lambda d, line: lines.append(f"{d}: {line}"))
    await c.ehlo("client.test")
    await c.auth("bob@example.test", "bobpw", mechanism="LOGIN")
    await c.quit()
    text = "\n".join(lines)
    assert "C: AUTH LOGIN" in text and text.count("C: ********") == 2 and "S: 235" in text
    assert "Ym9i" not in text and "bobpw" not in text


def test_trace_against_smtp_sink(tmp_path):
    with smtp_sink(dump=True) as (port, dump):
        p = run_cli("send", "--server", f"127.0.0.1:{port}", "--from", "a@x.test", "--to", "b@y.test",
                    "--subject", "sink", "--body", "hello sink", "--trace", check=False, cwd=tmp_path)
        got = dumped(dump)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert all(line[:3] in ("C: ", "S: ", "*  ") for line in lines[:-1])
    assert lines[1] == "S: 220 smtp-sink ESMTP"
    assert "C: MAIL FROM:<a@x.test>" in lines and "S: 250 2.1.5 Ok" in lines and "S: 221 Bye" in lines
    assert len(got) == 1 and b"\nSubject: sink\n" in got[0] and b"hello sink" in got[0]
