"""The reconciler's work queue: keys (namespace names) to reconcile, de-duplicated, FIFO,
with delayed adds for retries and grace periods.

A key queued twice before a worker takes it is reconciled once, which is what a
level-triggered controller wants: it compares the whole state each time, so bursts of
events for one namespace cost one reconcile.
"""

from __future__ import annotations

import threading
import time


class WorkQueue:
    """Namespace names to reconcile: de-duplicated, FIFO, with delayed adds."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: dict[str, None] = {}
        self._delayed: dict[str, float] = {}
        self._closed = False

    def add(self, key: str) -> None:
        """Queue ``key`` now (a no-op if it is already queued)."""
        with self._cond:
            self._ready[key] = None
            self._delayed.pop(key, None)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds (the earlier of two delayed adds wins)."""
        due = time.monotonic() + delay
        with self._cond:
            if key not in self._ready and due < self._delayed.get(key, float("inf")):
                self._delayed[key] = due
            self._cond.notify()

    def get(self, timeout: float) -> str | None:
        """The next key, waiting at most ``timeout`` seconds; ``None`` if there is none."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for key, due in list(self._delayed.items()):
                    if due <= now:
                        del self._delayed[key]
                        self._ready[key] = None
                if self._ready:
                    key = next(iter(self._ready))
                    del self._ready[key]
                    return key
                wait = min([deadline, *self._delayed.values()]) - now
                if now >= deadline:
                    return None
                self._cond.wait(max(wait, 0.01))
            return None

    def close(self) -> None:
        """Wake every waiter; :meth:`get` returns ``None`` from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
