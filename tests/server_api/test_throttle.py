"""Failed-login lockout: free failures, exponential lockout, cap, window, bounded memory."""

from __future__ import annotations

from rancher_server.auth.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, max_keys: int = 100) -> LoginThrottle:
    return LoginThrottle(free_failures=3, base_s=1.0, max_s=8.0, window_s=60.0,
                         max_keys=max_keys, clock=clock)


def test_exponential_lockout_after_free_failures() -> None:
    clock = Clock()
    t = make(clock)
    t.failure("k")
    t.failure("k")
    assert t.retry_after("k") == 0.0
    t.failure("k")
    assert t.retry_after("k") == 1.0
    clock.now += 1.0
    t.failure("k")
    assert t.retry_after("k") == 2.0
    for _ in range(5):
        clock.now += 10
        t.failure("k")
    assert t.retry_after("k") == 8.0  # capped
    assert t.retry_after("other") == 0.0


def test_success_and_window_reset() -> None:
    clock = Clock()
    t = make(clock)
    for _ in range(3):
        t.failure("k")
    t.success("k")
    assert t.retry_after("k") == 0.0
    t.failure("k")
    t.failure("k")
    clock.now += 61
    t.failure("k")  # the earlier two are forgotten: this is the first again
    assert t.retry_after("k") == 0.0


def test_memory_is_bounded() -> None:
    t = make(Clock(), max_keys=10)
    for i in range(100):
        t.failure(f"user-{i}")
    assert len(t) == 10
