"""Scenario 22: ``courrier probe`` tells a closed server from an open relay, and never sends DATA.

courrier's MX role is the closed server; a capture-mode courrier — which accepts every recipient by design — is the
deliberately open relay.
"""

import re

from tests.support import run_cli


def probe(*args, **kw):
    return run_cli("probe", *args, check=False, **kw)


def test_courrier_mx_is_not_an_open_relay(server_factory):
    s = server_factory()
    s.add_user("bob@example.test")
    s.start()
    p = probe(f"127.0.0.1:{s.ports['smtp']}", "--starttls")
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert re.search(r"^banner +220 mx\.example\.test ESMTP courrier$", out, re.M)
    assert re.search(r"^capabilities +PIPELINING, SIZE \d+, 8BITMIME, .*STARTTLS", out, re.M)
    assert re.search(r"^STARTTLS +offered$", out, re.M)
    assert re.search(r"^TLS +TLSv1\.[23], cipher \S+ \(\d+ bits\)$", out, re.M)
    assert re.search(r"^cert subject +.*CN=mx\.example\.test", out, re.M)
    assert re.search(r"^cert issuer +.*\(self-signed\)$", out, re.M)
    assert re.search(r"^cert expires +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+ days left\)$", out, re.M)
    assert re.search(r"^capabilities \(TLS\) +PIPELINING", out, re.M)
    assert "STARTTLS" not in re.search(r"^capabilities \(TLS\) +(.*)$", out, re.M).group(1)
    assert re.search(r"RCPT TO:<relay-probe@example\.net> → 554 5\.7\.1 .*\(no DATA sent\)$", out, re.M)
    assert re.search(r"^verdict +not an open relay \(foreign recipient refused: 554 5\.7\.1", out, re.M)
    assert "smtp.connect" in s.log() and " smtp.message " not in s.log()  # no message ever reached the server
    assert s.stored("bob@example.test") == []


def test_capture_mode_is_an_open_relay_and_gets_no_message(server_factory):
    s = server_factory(capture=True).start()
    p = probe(f"127.0.0.1:{s.ports['smtp']}", "--trace")
    assert p.returncode == 3, p.stdout + p.stderr
    assert re.search(r"^verdict +OPEN RELAY: relay-probe@example\.net accepted from an unauthenticated client "
                     r"\(250 ", p.stdout, re.M)
    sent = [line for line in p.stdout.splitlines() if line.startswith("C: ")]
    assert sent[-3:] == ["C: RCPT TO:<relay-probe@example.net>", "C: RSET", "C: QUIT"]
    assert not any(line in ("C: DATA", "C: BDAT") for line in sent)
    root = s.data / "capture"
    assert not any((root / sub).exists() and any((root / sub).iterdir()) for sub in ("new", "cur"))


def test_auth_before_and_after_tls_on_submission(server_factory):
    # trust_loopback = false: 127.0.0.1 is treated like a remote client, so AUTH waits for TLS
    s = server_factory(listeners=("submission", "submissions"), top={"trust_loopback": False}).start()
    p = probe(f"127.0.0.1:{s.ports['submission']}", "--starttls")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^AUTH before TLS +none offered$", p.stdout, re.M)
    assert re.search(r"^AUTH after TLS +PLAIN LOGIN$", p.stdout, re.M)
    assert re.search(r"^verdict +not an open relay \(MAIL FROM refused without authentication: 530 5\.7\.0",
                     p.stdout, re.M)
    p = probe(f"127.0.0.1:{s.ports['submissions']}", "--tls")
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^TLS +TLSv1\.[23]", p.stdout, re.M) and "AUTH before TLS" not in p.stdout
    assert re.search(r"^AUTH after TLS +PLAIN LOGIN$", p.stdout, re.M)


def test_unreachable_exits_1():
    from tests.support import free_port

    port = free_port()
    p = probe(f"127.0.0.1:{port}", "--timeout", "5")
    assert p.returncode == 1
    assert p.stderr.strip() == f"courrier: 127.0.0.1:{port} unreachable: cannot connect to 127.0.0.1:{port}: " \
                               "connection refused"
    assert "Traceback" not in p.stderr
    assert probe("bad host:x").returncode == 2  # bad usage
