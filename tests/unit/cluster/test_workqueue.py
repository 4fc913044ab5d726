"""The reconciler's work queue: de-duplicated, FIFO, delayed adds, close."""

from __future__ import annotations

import time

from webhook.cluster.workqueue import WorkQueue


def test_work_queue_dedupes_and_delays() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert [queue.get(0.1), queue.get(0.1), queue.get(0.05)] == ["a", "b", None]
    queue.add_after("c", 0.2)
    started = time.monotonic()
    assert queue.get(0.05) is None
    assert queue.get(2.0) == "c"
    assert 0.15 < time.monotonic() - started < 1.5
    queue.add_after("d", 10)
    queue.add("d")  # an immediate add wins over a pending delay
    assert queue.get(0.1) == "d"
    queue.close()
    assert queue.get(1.0) is None
