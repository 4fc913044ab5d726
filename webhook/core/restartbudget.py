"""The restart budget: how often the leader may roll workloads. Pure, driven by an injected
clock (seconds, monotonic), so its unit tests need no sleeping.

Two limits, both must allow a restart:

* **cluster-wide rate**: at most ``max_per_minute`` restarts in any sliding 60 s window
  (Dapr's watchdog has the same "max restarts per minute" knob). A sliding window, not a
  token bucket, so no burst above the limit can ever build up while idle.
* **per-workload cool-down**: after a workload is rolled it is not rolled again for
  ``cooldown`` seconds; each further restart of the same workload (without a
  :meth:`RestartBudget.forget` in between) doubles it, up to ``cooldown_max``.

Why both: a webhook that fails in a loop leaves every new pod without its sidecar, so
each repair makes the next one look needed. The rate bounds the whole cluster to
``max_per_minute`` restarts a minute, whatever happens; the doubling cool-down bounds each
workload to about log2(cooldown_max / cooldown) + 1 restarts per ``cooldown_max`` (at the
defaults, 600 s doubling to 24 h: 9 restarts in the first day, then one a day), so a
broken webhook never becomes a restart storm. ``forget`` is called once a workload is seen
healthy (no pod missing the sidecar, none out of date), which resets its doubling.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    """Whether a restart may happen now; otherwise why not (``rate-limited``,
    ``cooling-down``) and how many seconds until it might."""

    allowed: bool
    reason: str = ""
    wait: float = 0.0


ALLOWED = Verdict(True)


@dataclass
class _Strikes:
    last: float
    count: int


class RestartBudget:
    """The two limits of the module docstring, for one leader. Not thread-safe: the one
    restart worker owns it."""

    def __init__(
        self,
        *,
        max_per_minute: int,
        cooldown: float,
        cooldown_max: float,
        clock: Callable[[], float],
    ) -> None:
        if max_per_minute < 1:
            raise ValueError(f"max_per_minute must be at least 1, not {max_per_minute}")
        if not 0 < cooldown <= cooldown_max:
            raise ValueError(f"need 0 < cooldown <= cooldown_max, not {cooldown} / {cooldown_max}")
        self.max_per_minute = max_per_minute
        self.cooldown = cooldown
        self.cooldown_max = cooldown_max
        self.clock = clock
        self._recent: deque[float] = deque()
        self._strikes: dict[str, _Strikes] = {}

    def cooldown_of(self, key: str) -> float:
        """The cool-down that applies to ``key`` after its restarts so far (0 if none)."""
        strikes = self._strikes.get(key)
        if strikes is None:
            return 0.0
        return min(self.cooldown * 2.0 ** (strikes.count - 1), self.cooldown_max)

    def check(self, key: str) -> Verdict:
        """May ``key`` be restarted now? Does not use up the budget (see :meth:`record`)."""
        now = self.clock()
        strikes = self._strikes.get(key)
        if strikes is not None:
            left = strikes.last + self.cooldown_of(key) - now
            if left > 0:
                return Verdict(False, "cooling-down", left)
        self._expire(now)
        if len(self._recent) >= self.max_per_minute:
            return Verdict(False, "rate-limited", self._recent[0] + WINDOW_SECONDS - now)
        return ALLOWED

    def record(self, key: str) -> None:
        """``key`` was restarted now: count it against the rate and its cool-down."""
        now = self.clock()
        self._expire(now)
        self._recent.append(now)
        strikes = self._strikes.get(key)
        if strikes is None:
            self._strikes[key] = _Strikes(now, 1)
        else:
            strikes.last, strikes.count = now, strikes.count + 1

    def forget(self, key: str) -> None:
        """``key`` is healthy: its next restart starts from the base cool-down again. A
        restart still cooling down keeps its cool-down, so a workload that is healthy for
        a moment between two failures gains nothing."""
        strikes = self._strikes.get(key)
        if strikes is not None and self.clock() - strikes.last >= self.cooldown_of(key):
            del self._strikes[key]

    def _expire(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - WINDOW_SECONDS:
            self._recent.popleft()
