"""The admission-time cost of the pure step per pod shape: CPU µs of ``inject_pod`` plus
``make_patch`` (what the webhook does between parsing the review and writing the answer).

Issue 12 asks what env-only injection and the conventions' resource attributes cost at
admission. ``--tree DIR`` imports the core from another checkout (e.g. one of ``main``), so
the same pods can be timed before and after a change; shapes that tree does not know are
left out. CPU time (``time.process_time``) is less disturbed by other processes than the
wall clock on a shared machine; the minimum of the batches is the figure to compare, the
median says how noisy the run was.

    python -m bench.perf.rulecost [--tree DIR] [--batches 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any


def shapes(
    typical_pod: Callable[[], dict[str, Any]], large_pod: Callable[[], dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(name, pod, admissions per batch)."""
    yield "typical (sidecar)", typical_pod(), 200
    yield "large, 50 containers (sidecar)", large_pod(), 10
    for endpoint, label in (("node", "node"), ("http://otel-gateway.observability.svc:4318", "URL")):
        pod = typical_pod()
        pod["metadata"].setdefault("annotations", {}).update(
            {"otel-injector.io/sidecar-mode": "none", "otel-injector.io/endpoint": endpoint}
        )
        yield f"typical, env-only {label}", pod, 200
    pod = typical_pod()
    pod["metadata"].setdefault("annotations", {}).update(
        {f"resource.opentelemetry.io/team.k{i}": f"value {i}, ü" for i in range(8)}
    )
    pod["metadata"].setdefault("labels", {}).update(
        {"app.kubernetes.io/version": "2.14.1", "app.kubernetes.io/part-of": "shop"}
    )
    yield "typical + 8 resource annotations, 2 labels", pod, 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", help="a checkout whose webhook.core to time instead of this one")
    parser.add_argument("--batches", type=int, default=9)
    args = parser.parse_args(argv)
    if args.tree:
        sys.path.insert(0, args.tree)
        for module in [m for m in sys.modules if m == "webhook" or m.startswith(("webhook.", "bench."))]:
            del sys.modules[module]
    from bench.perf.pods import large_pod, typical_pod
    from webhook.core.injection import inject_pod
    from webhook.core.patch import make_patch
    from webhook.core.settings import InjectionSettings

    settings = InjectionSettings(config_hash="0123456789abcdef")
    print(f"{'pod':44} {'min µs':>9} {'median µs':>10}")
    for name, pod, count in shapes(typical_pod, large_pod):
        result = inject_pod(pod, settings, namespace="shop")
        if any(n.reason.startswith(("unknown-", "invalid-")) for n in result.notices):
            continue  # a tree without the feature: nothing to compare
        batches = []
        for _ in range(args.batches):
            started = time.process_time()
            for _ in range(count):
                make_patch(pod, inject_pod(pod, settings, namespace="shop").pod)
            batches.append((time.process_time() - started) / count * 1e6)
        print(f"{name:44} {min(batches):9.1f} {statistics.median(batches):10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
