"""probe: the verdict logic against smtp-sink, which accepts every recipient unless told to refuse them."""

from courrier.client.probe import EXIT_OK, EXIT_OPEN_RELAY, EXIT_UNREACHABLE, probe
from tests.client.sink import dumped, smtp_sink
from tests.support import free_port


async def test_a_server_accepting_foreign_recipients_is_an_open_relay():
    with smtp_sink(dump=True) as (port, dump):
        r = await probe("127.0.0.1", port, starttls=True)
        assert dumped(dump, timeout=0.3) == []  # never DATA
    assert r.exit_code == EXIT_OPEN_RELAY and r.open_relay
    assert r.banner is not None and r.banner.code == 220
    assert "PIPELINING" in r.capabilities and r.auth_before_tls == ["PLAIN", "LOGIN"]
    assert r.tls is None and r.notes == ["STARTTLS asked for but not offered: the relay test ran in clear text"]
    assert r.verdict.startswith("OPEN RELAY: relay-probe@example.net accepted")


async def test_refused_rcpt_or_mail_is_not_an_open_relay():
    with smtp_sink("-f", "RCPT") as (port, _):
        r = await probe("127.0.0.1", port, relay_to="someone@far.example")
    assert r.exit_code == EXIT_OK and r.relay_rcpt.code == 500
    assert r.verdict.startswith("not an open relay (foreign recipient refused: 500")
    with smtp_sink("-r", "MAIL") as (port, _):
        r = await probe("127.0.0.1", port)
    assert r.exit_code == EXIT_OK and r.relay_rcpt is None and r.relay_mail.code == 450


async def test_unreachable_and_broken_sessions_exit_1():
    r = await probe("127.0.0.1", free_port(), timeout=5)
    assert r.exit_code == EXIT_UNREACHABLE and "connection refused" in r.error
    with smtp_sink("-q", "MAIL") as (port, _):  # hangs up instead of answering
        r = await probe("127.0.0.1", port)
    assert r.exit_code == EXIT_UNREACHABLE and "connection closed" in r.error
