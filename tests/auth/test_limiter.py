"""The shared failed-login limiter: window, lock, per-account rules, IPv6 prefixes, memory bound, atomicity."""

from __future__ import annotations

import asyncio
import time

import pytest

from courrier.auth import AuthGate, AuthLimiter, Limited, client_key


class Clock:
    """A settable clock: the windows are minutes long, tests must not wait for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(lim: AuthLimiter, client: str, account: str | None = "u@x.test") -> list[str]:
    slot = lim.acquire(client, account)
    assert slot is not None, f"{client} refused"
    return slot.release(False)


def succeed(lim: AuthLimiter, client: str, account: str) -> bool:
    slot = lim.acquire(client, account)
    if slot is None:
        return False
    slot.release(True)
    return True


def test_budget_per_window_then_locked_for_five_minutes():
    clock = Clock()
    lim = AuthLimiter(3, window=300, lock=300, clock=clock)
    assert fail(lim, "10.0.0.1", "a@x.test") == []
    assert fail(lim, "10.0.0.1", "b@x.test") == []
    assert not lim.refused("10.0.0.1")
    assert fail(lim, "10.0.0.1", "c@x.test") == ["client"]
    assert lim.refused("10.0.0.1")
    assert lim.acquire("10.0.0.1", "anyone@x.test") is None  # the right password would not even be checked
    assert not lim.refused("10.0.0.2") and succeed(lim, "10.0.0.2", "a@x.test")  # others are not affected
    clock.now += 299
    assert lim.refused("10.0.0.1")
    clock.now += 2
    assert not lim.refused("10.0.0.1") and succeed(lim, "10.0.0.1", "a@x.test")


def test_failures_outside_the_window_are_forgotten():
    clock = Clock()
    lim = AuthLimiter(3, window=300, clock=clock)
    fail(lim, "10.0.0.1")
    fail(lim, "10.0.0.1")
    clock.now += 301
    assert fail(lim, "10.0.0.1") == []
    assert not lim.refused("10.0.0.1")


def test_success_costs_nothing():
    lim = AuthLimiter(2, clock=Clock())
    for _ in range(10):
        assert succeed(lim, "10.0.0.1", "a@x.test")
    assert not lim.refused("10.0.0.1")


def test_malformed_attempts_count():
    lim = AuthLimiter(3, clock=Clock())
    lim.fail("10.0.0.1")
    lim.fail("10.0.0.1")
    assert lim.fail("10.0.0.1") == ["client"]
    assert lim.refused("10.0.0.1")


def test_one_client_can_never_lock_an_account():
    lim = AuthLimiter(3, clock=Clock())
    for _ in range(3):
        fail(lim, "10.0.0.1", "bob@x.test")
    assert lim.refused("10.0.0.1")
    assert succeed(lim, "10.0.0.2", "bob@x.test")  # the real user, elsewhere, never seen before


def test_account_locked_by_many_clients_but_not_for_a_known_one():
    clock = Clock()
    lim = AuthLimiter(3, clock=clock)
    assert succeed(lim, "192.0.2.7", "Bob@X.test")  # bob's own machine, known from now on
    fail(lim, "10.0.0.1", "bob@x.test")
    fail(lim, "10.0.0.2", " BOB@x.test")
    assert fail(lim, "10.0.0.3", "bob@x.test") == ["account"]  # three different clients
    assert lim.acquire("10.0.0.9", "bob@x.test") is None  # an unknown client: refused, not checked
    assert succeed(lim, "10.0.0.9", "alice@x.test")  # other accounts are not affected
    assert succeed(lim, "192.0.2.7", "bob@x.test")  # the real user's known client still gets checked
    clock.now += 301
    assert succeed(lim, "10.0.0.9", "bob@x.test")


def test_account_locked_by_total_failures():
    lim = AuthLimiter(2, clock=Clock())  # distinct clients: 2; failures in all: 6 — each client spends 1 here
    lim.account_clients = 100  # isolate the total rule
    for i in range(5):
        assert fail(lim, f"10.0.1.{i}", "bob@x.test") == []
    assert fail(lim, "10.0.1.9", "bob@x.test") == ["account"]
    assert lim.acquire("10.0.2.1", "bob@x.test") is None


def test_ipv6_prefix_groups_a_host():
    assert client_key("2001:db8:1:2:aaaa::1", 64) == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff::9", 64) == client_key("2001:db8:1:2::1", 64)
    assert client_key("2001:db8:1:3::1", 64) != client_key("2001:db8:1:2::1", 64)
    assert client_key("2001:db8:1:3::1", 48) == client_key("2001:db8:1:2::1", 48)
    assert client_key("::ffff:192.0.2.1", 64) == "192.0.2.1"  # IPv4-mapped is the IPv4 client
    assert client_key("fe80::1%eth0", 64) == "fe80::/64"
    assert client_key("192.0.2.1", 64) == "192.0.2.1"
    assert client_key("not-an-ip", 64) == "not-an-ip"
    lim = AuthLimiter(2, ipv6_prefix=64, clock=Clock())
    fail(lim, lim.key("2001:db8::1"))
    fail(lim, lim.key("2001:db8::ffff:2"))  # another address of the same /64: the same client
    assert lim.refused(lim.key("2001:db8::3"))
    assert not lim.refused(lim.key("2001:db8:0:1::1"))


def test_memory_is_bounded():
    lim = AuthLimiter(5, max_keys=100, clock=Clock())
    for i in range(1000):
        fail(lim, f"10.0.{i // 256}.{i % 256}", f"user{i}@x.test")
        succeed(lim, f"10.1.{i // 256}.{i % 256}", f"user{i}@x.test")
    assert len(lim.clients.entries) <= 100 and len(lim.accounts.entries) <= 100 and len(lim.known) <= 100


def test_stale_keys_are_pruned():
    clock = Clock()
    lim = AuthLimiter(5, window=300, lock=300, clock=clock)
    for i in range(10):
        fail(lim, f"10.0.0.{i}", f"u{i}@x.test")
    clock.now += 1000
    for i in range(10):
        fail(lim, f"10.9.9.{i}", f"z{i}@x.test")
    assert all(k.startswith("10.9.9.") for k in lim.clients.entries)


def test_in_flight_checks_take_the_budget():
    lim = AuthLimiter(3, clock=Clock())
    slots = [lim.acquire("10.0.0.1", "u@x.test") for _ in range(5)]
    assert sum(s is not None for s in slots) == 3  # the 4th and 5th are refused while 3 are being checked
    for s in slots[:3]:
        s.release(True)  # they were right after all: the budget is free again
    assert lim.acquire("10.0.0.1", "u@x.test") is not None


async def test_sixty_concurrent_wrong_attempts_check_at_most_the_budget():
    """Atomicity: the slot is taken before the (slow) check, so a flood costs ``budget`` checks, not 60."""
    gate = AuthGate(AuthLimiter(10, clock=Clock()))
    checked = 0

    def slow_wrong(user: str, password: str) -> None:
        nonlocal checked
        checked += 1
        time.sleep(0.05)  # argon2 is slow on purpose
        return None

    async def attempt(i: int) -> str:
        try:
            return "ok" if await gate.login("10.0.0.1", "bob@x.test", f"guess{i}", "smtp", slow_wrong) else "wrong"
        except Limited:
            return "limited"

    results = await asyncio.gather(*(attempt(i) for i in range(60)))
    assert checked == gate.checks == 10
    assert results.count("wrong") == 10 and results.count("limited") == 50
    with pytest.raises(Limited):  # and a correct password from that client is refused for the rest of the window
        await gate.login("10.0.0.1", "bob@x.test", "right", "smtp", lambda u, p: True)
    assert await gate.login("10.0.0.2", "bob@x.test", "right", "smtp", lambda u, p: True)


async def test_a_check_that_is_cancelled_counts_as_a_failure():
    gate = AuthGate(AuthLimiter(1, clock=Clock()))
    with pytest.raises(RuntimeError), gate.slot("10.0.0.1", "bob", "imap"):
        raise RuntimeError("client hung up")
    assert gate.refused("10.0.0.1", "imap")


def test_accept_any_costs_nothing_but_a_locked_client_stays_locked():
    gate = AuthGate(AuthLimiter(2, clock=Clock()))
    for _ in range(5):
        gate.accept_any("10.0.0.1", "smtp")
    gate.malformed("10.0.0.1", "smtp", "bad base64")
    gate.malformed("10.0.0.1", "smtp", "bad base64")
    with pytest.raises(Limited):
        gate.accept_any("10.0.0.1", "smtp")


def test_failures_during_the_lock_neither_extend_nor_stack():
    clock = Clock()
    lim = AuthLimiter(2, window=300, lock=300, clock=clock)
    lim.fail("10.0.0.1")
    lim.fail("10.0.0.1")
    clock.now += 200
    for _ in range(50):
        assert lim.fail("10.0.0.1") == []  # a racing exchange that ends while locked
    assert len(lim.clients.peek("10.0.0.1").failures) == 0
    clock.now += 101
    assert not lim.refused("10.0.0.1")
