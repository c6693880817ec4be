"""The time budget of one message's checks (``[auth] check_timeout``, issue 11 item 22), against a nameserver that
never answers: the check ends with the budget, what did not finish is temperror, the question that hung is named,
and the threads the checks run on stay bounded however many messages arrive."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from publicsuffixlist import PublicSuffixList

from courrier.mailauth import dkim
from courrier.mailauth._dns import LookupLog, Resolver, TempDNSError
from courrier.mailauth.report import Authenticator
from tests.mailauth.silentdns import SilentDNS

PSL = PublicSuffixList()
MESSAGE = (b"From: CEO <ceo@slow.test>\r\nTo: bob@b.test\r\nSubject: hello\r\n"
           b"Message-ID: <1@slow.test>\r\n\r\nbody\r\n")


@pytest.fixture
def silent():
    with SilentDNS() as ns:
        yield ns


def silent_auth(ns: SilentDNS, budget: float, max_concurrent: int = 8) -> Authenticator:
    # a per-question timeout (5 s) far beyond the budget: only the budget can end the check in time
    return Authenticator(Resolver([("127.0.0.1", ns.port)], timeout=5.0), "mx.b.test", PSL,
                         max_concurrent=max_concurrent, timeout=budget)


def test_each_question_gets_only_the_time_left(silent):
    resolver = Resolver([("127.0.0.1", silent.port)], timeout=5.0)
    log = LookupLog(deadline=time.monotonic() + 0.4)
    t0 = time.monotonic()
    with pytest.raises(TempDNSError):
        resolver.txt("_dmarc.slow.test", log=log)
    assert time.monotonic() - t0 < 1.0
    assert log.hung is not None and (log.hung.rdtype, log.hung.name) == ("TXT", "_dmarc.slow.test")
    t0 = time.monotonic()
    with pytest.raises(TempDNSError, match="budget spent"):
        resolver.query("slow.test", "A", log=log)  # past the deadline: not even asked
    assert time.monotonic() - t0 < 0.1 and log.skipped == 1 and log.over_budget


async def test_silent_nameserver_costs_one_budget_not_one_timeout_per_lookup(silent):
    auth = silent_auth(silent, budget=1.0)
    t0 = time.monotonic()
    r = await auth.check_async(MESSAGE, client_ip="127.0.0.2", helo="mx.slow.test", mail_from="ceo@slow.test")
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5, elapsed
    assert r.over_budget and r.hung is not None
    assert (r.hung.rdtype, r.hung.name) == ("TXT", "mx.slow.test")  # the first question (SPF for the HELO name)
    assert r.spf.result == "temperror" and r.dmarc.result == "temperror" and r.dkim == []
    header = r.header("mx.b.test")
    assert "spf=temperror" in header and "dmarc=temperror" in header and "dkim=none" in header


async def test_finished_checks_keep_their_result(fake_dns, silent):
    """Only what the budget cut short is temperror: a DKIM pass found before the deadline stays a pass."""
    key = dkim.signing_key("a.test", "s1", dkim.generate_pem("ed25519"))
    fake_dns.set(key.record_name, {"TXT": [key.record]})
    fake_dns.set("_dmarc.a.test", "TIMEOUT")
    auth = Authenticator(Resolver([("127.0.0.1", fake_dns.port)], timeout=5.0), "mx.b.test", PSL, timeout=1.0)
    signed = dkim.Signer({"a.test": key}).sign(MESSAGE.replace(b"slow.test", b"a.test"))
    r = await auth.check_async(signed, client_ip=None, helo=None, mail_from="ceo@a.test")
    assert [x.result for x in r.dkim] == ["pass"] and r.dmarc.result == "temperror"
    assert r.hung is not None and r.hung.name == "_dmarc.a.test"


async def test_threads_stay_bounded_under_a_flood(silent):
    """30 messages at once against a dead nameserver: never more than ``max_concurrent`` checking threads, and every
    message is answered within its budget (those that never got a thread are temperror without one)."""
    auth = silent_auth(silent, budget=0.8, max_concurrent=2)
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(1 for t in threading.enumerate() if t.name.startswith("courrier-mailauth")))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    t0 = time.monotonic()
    reports = await asyncio.gather(*(
        auth.check_async(MESSAGE, client_ip="127.0.0.2", helo="mx.slow.test", mail_from=f"u{i}@slow.test")
        for i in range(30)))
    elapsed = time.monotonic() - t0
    done.set()
    await watcher
    assert elapsed < 2.0, elapsed  # budget 0.8 s + the 0.25 s hard stop, with room for a loaded machine
    assert peak <= 2, peak
    assert all(r.over_budget and r.dmarc.result == "temperror" for r in reports)
    auth.close()


def test_check_timeout_is_a_duration(tmp_path):
    from courrier import config

    f = tmp_path / "courrier.toml"
    f.write_text('[auth]\ncheck_timeout = "1500ms"\n')
    with pytest.raises(config.ConfigError, match="auth.check_timeout"):
        config.load(str(f))
    f.write_text('[auth]\ncheck_timeout = "0s"\n')
    with pytest.raises(config.ConfigError, match="auth.check_timeout"):
        config.load(str(f))
    f.write_text('[auth]\ncheck_timeout = "2s"\n')
    assert config.load(str(f)).auth.check_timeout == 2.0
    f.write_text("")
    assert config.load(str(f)).auth.check_timeout == 5.0
