"""Backoff: doubling from the initial delay up to the bound, with +-20 % jitter, and reset."""

from __future__ import annotations

from webhook.cluster.backoff import Backoff


def test_doubles_up_to_the_bound_with_jitter() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [1, 2, 4, 5, 5, 5], strict=True):
        assert 0.8 * nominal <= delay <= 1.2 * nominal


def test_reset_starts_again() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert 0.4 <= backoff.next() <= 0.6


def test_jitter_spreads_replicas() -> None:
    assert len({round(Backoff(1.0, 1.0).next(), 6) for _ in range(20)}) > 1
