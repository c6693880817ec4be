from courrier.queue.schedule import Schedule


def test_default_backoff_doubles_to_the_cap():
    s = Schedule()
    assert [s.next_delay(n) for n in range(8)] == [300, 600, 1200, 2400, 4800, 9600, 14400, 14400]


def test_next_attempt_never_after_expiry():
    s = Schedule(retry_first=10, retry_max=100, max_lifetime=50, delay_notice=20)
    assert s.next_attempt(created=0, now=45, failed_attempts=3) == 50
    assert s.expired(0, 50) and not s.expired(0, 49.9)
    assert s.delay_due(0, 20) and not s.delay_due(0, 19)
