"""The agent's schedules with an injected clock: no sleeping."""

from __future__ import annotations

from watcher.agent.schedules import (
    DIRECT,
    Cooldown,
    ExitPool,
    PanicDetector,
    RetrySchedule,
    redact,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_exit_is_bad_only_after_two_consecutive_problems() -> None:
    clock = FakeClock()
    pool = ExitPool(["http://a:1", "http://b:2"], revive_after=1800, clock=clock)
    a, b = pool.exits
    assert pool.problem(a) is False
    pool.success(a)  # a success in between resets the count
    assert pool.problem(a) is False
    assert pool.good() == [a, b]
    assert pool.problem(a) is True
    assert pool.good() == [b] and pool.bad_count() == 1
    assert pool.pick() is b


def test_a_bad_exit_revives_after_the_timeout_or_on_success() -> None:
    clock = FakeClock()
    pool = ExitPool(["http://a:1", "http://b:2"], revive_after=1800, clock=clock)
    a, b = pool.exits
    pool.problem(a), pool.problem(a)
    clock.now += 1799
    assert pool.good() == [b]
    clock.now += 1
    assert pool.good() == [a, b] and a.problems == 0
    pool.problem(b), pool.problem(b)
    pool.success(b)
    assert pool.good() == [a, b]


def test_a_retry_goes_out_through_another_exit_and_all_bad_still_picks_one() -> None:
    clock = FakeClock()
    pool = ExitPool(["http://a:1", "http://b:2"], clock=clock)
    a, b = pool.exits
    assert pool.pick(avoid=a) is b and pool.pick(avoid=b) is a
    for exit_ in (a, a, b, b):
        pool.problem(exit_)
    assert pool.good() == []
    assert pool.pick() is a  # the one reviving soonest: the agent never has no way out
    assert ExitPool([]).pick().url == DIRECT


def test_proxy_passwords_are_redacted() -> None:
    assert redact("http://user:secret@proxy.example:3128") == "http://user:***@proxy.example:3128"
    assert redact("http://proxy.example:3128") == "http://proxy.example:3128"
    assert "secret" not in ExitPool(["socks5://u:secret@h:1"]).exits[0].name


def test_fast_retries_then_long_ones_then_none() -> None:
    schedule = RetrySchedule(fast=(30, 60), long=(120, 240, 900))
    assert [schedule.delay(i) for i in range(6)] == [30, 60, 120, 240, 900, None]
    assert [RetrySchedule(max_retries=2).delay(i) for i in range(3)] == [30, 60, None]


def test_cooldown_after_n_consecutive_failures() -> None:
    clock = FakeClock()
    cooldown = Cooldown(threshold=5, duration=3600, clock=clock)
    for _ in range(4):
        assert cooldown.failure() is False
    cooldown.success()  # the streak is broken
    assert [cooldown.failure() for _ in range(5)] == [False] * 4 + [True]
    assert cooldown.remaining() == 3600
    clock.now += 3599
    assert cooldown.remaining() == 1
    clock.now += 1
    assert cooldown.remaining() == 0 and cooldown.until is None


def test_panic_on_a_captcha_or_a_burst_of_403s() -> None:
    clock = FakeClock()
    detector = PanicDetector(burst=3, window=300, clock=clock)
    assert detector.observe(200, captcha=True) == "captcha"
    assert detector.observe(403, False) is None
    clock.now += 200
    assert detector.observe(403, False) is None
    clock.now += 101  # the first 403 has left the window
    assert detector.observe(403, False) is None
    assert detector.observe(200, False) is None
    assert detector.observe(403, False) == "3 HTTP 403 within 300 s"
    assert detector.observe(403, False) is None  # counted afresh after a panic
