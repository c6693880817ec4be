"""AuthThrottle: N failures per window per IP and per account, then a block of fixed length."""

from courrier.smtp.throttle import AuthThrottle


class Clock:
    """A settable clock: the throttle's windows are minutes long, tests must not wait for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_blocks_ip_after_limit_then_releases_after_block():
    clock = Clock()
    t = AuthThrottle(3, window=300, block=300, clock=clock)
    assert t.failure("10.0.0.1", "a@x.test") == []
    assert t.failure("10.0.0.1", "b@x.test") == []
    assert not t.blocked("10.0.0.1", "c@x.test")
    assert t.failure("10.0.0.1", "c@x.test") == ["ip"]
    assert t.blocked("10.0.0.1", "anyone@x.test")
    assert not t.blocked("10.0.0.2", "anyone@x.test")  # other clients are not punished
    clock.now += 299
    assert t.blocked("10.0.0.1", "anyone@x.test")
    clock.now += 2
    assert not t.blocked("10.0.0.1", "anyone@x.test")


def test_blocks_account_across_ips_case_insensitively():
    clock = Clock()
    t = AuthThrottle(3, clock=clock)
    t.failure("10.0.0.1", "Bob@X.test")
    t.failure("10.0.0.2", "bob@x.test")
    assert t.failure("10.0.0.3", " bob@x.test") == ["account"]
    assert t.blocked("10.0.0.9", "BOB@x.test")
    assert not t.blocked("10.0.0.9", "alice@x.test")


def test_failures_outside_the_window_are_forgotten():
    clock = Clock()
    t = AuthThrottle(3, window=300, clock=clock)
    t.failure("10.0.0.1", "a@x.test")
    t.failure("10.0.0.1", "a@x.test")
    clock.now += 301
    assert t.failure("10.0.0.1", "a@x.test") == []
    assert not t.blocked("10.0.0.1", "a@x.test")


def test_memory_is_bounded():
    clock = Clock()
    t = AuthThrottle(5, max_keys=100, clock=clock)
    for i in range(1000):
        t.failure(f"10.0.{i // 256}.{i % 256}", f"user{i}@x.test")
    assert len(t.by_ip.entries) <= 100 and len(t.by_account.entries) <= 100


def test_stale_keys_are_pruned():
    clock = Clock()
    t = AuthThrottle(5, window=300, block=300, clock=clock)
    for i in range(10):
        t.failure(f"10.0.0.{i}", f"u{i}@x.test")
    clock.now += 1000
    for _ in range(10):
        t.failure("10.9.9.9", "z@x.test")
        t.blocked("10.9.9.9", "z@x.test")
    assert set(t.by_ip.entries) == {"10.9.9.9"}
