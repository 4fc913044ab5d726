"""Bounded exponential backoff with jitter, for every retry loop of the cluster layer
(informers, the reconciler's per-namespace retries, the certificate bootstrap).

Jitter keeps the replicas of a Deployment from retrying against the API server in step
after a shared outage.
"""

from __future__ import annotations

import random


class Backoff:
    """Bounded exponential backoff with jitter: ``initial``, doubling, at most ``maximum``."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        """The delay to wait now; the following one is twice as long, up to the bound."""
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not secrets

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._next = self.initial
