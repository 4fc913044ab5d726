"""The restart budget with a hand-driven clock: the sliding per-minute rate, the doubling
per-workload cool-down, forget, and the bound a webhook failing in a loop can reach."""

from __future__ import annotations

import pytest

from webhook.core.restartbudget import RestartBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock, *, per_minute: int = 2, cooldown: float = 600.0, cap: float = 86400.0) -> RestartBudget:
    return RestartBudget(max_per_minute=per_minute, cooldown=cooldown, cooldown_max=cap, clock=clock)


def test_the_rate_is_a_sliding_minute() -> None:
    clock = Clock()
    limiter = budget(clock)
    for key in ("a", "b"):
        assert limiter.check(key).allowed
        limiter.record(key)
        clock.now += 10
    third = limiter.check("c")
    assert (third.allowed, third.reason) == (False, "rate-limited")
    assert third.wait == pytest.approx(40.0)  # the first restart leaves the window at +60 s
    clock.now += 40
    assert limiter.check("c").allowed


def test_the_cool_down_holds_one_workload_and_doubles_up_to_the_cap() -> None:
    clock = Clock()
    limiter = budget(clock, per_minute=100, cooldown=600, cap=2000)
    waits = []
    for _ in range(5):
        assert limiter.check("shop/Deployment/web").allowed
        limiter.record("shop/Deployment/web")
        held = limiter.check("shop/Deployment/web")
        assert held.reason == "cooling-down"
        waits.append(held.wait)
        assert limiter.check("shop/Deployment/other").allowed  # only that workload waits
        clock.now += held.wait
    assert waits == [600, 1200, 2000, 2000, 2000]


def test_forget_resets_the_doubling_only_once_the_cool_down_is_over() -> None:
    clock = Clock()
    limiter = budget(clock, per_minute=100)
    limiter.record("w")
    clock.now += 300
    limiter.forget("w")  # healthy for a moment, still cooling down: nothing gained
    assert limiter.check("w").reason == "cooling-down"
    clock.now += 300
    limiter.record("w")
    assert limiter.cooldown_of("w") == 1200
    clock.now += 1200
    limiter.forget("w")
    assert limiter.cooldown_of("w") == 0
    limiter.record("w")
    assert limiter.cooldown_of("w") == 600


def test_a_webhook_failing_in_a_loop_never_causes_a_restart_storm() -> None:
    """Every restart leaves the workloads broken again (the webhook keeps failing), so each
    pass asks again for all of them, every 30 s for a day."""
    clock = Clock()
    limiter = budget(clock)
    workloads = [f"shop/Deployment/w{i}" for i in range(50)]
    restarts: dict[str, int] = dict.fromkeys(workloads, 0)
    per_minute: dict[int, int] = {}
    day = 86400
    start = clock.now
    while clock.now < start + day:
        for key in workloads:
            if limiter.check(key).allowed:
                limiter.record(key)
                restarts[key] += 1
                minute = int((clock.now - start) // 60)
                per_minute[minute] = per_minute.get(minute, 0) + 1
        clock.now += 30
    assert max(per_minute.values()) <= 2
    # 600 s doubling to 24 h: 600+1200+...+76800 < 86400 < +86400, so at most 9 a day each.
    assert max(restarts.values()) <= 9
    assert sum(restarts.values()) <= 2 * day / 60


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_per_minute"):
        budget(Clock(), per_minute=0)
    with pytest.raises(ValueError, match="cooldown"):
        budget(Clock(), cooldown=10, cap=5)
