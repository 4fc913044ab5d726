"""What the cluster context (issue 12 §3, §4, §7) costs: time on the admission path and memory
in the caches. ``python -m bench.perf.contextcost`` prints the figures the README quotes.

* **Time**, in process, on the bench's typical pod (3 containers, each with an ``envFrom``
  ConfigMap): :meth:`ContextCache.context_for` alone, and the mutation with and without the
  context it gives, in alternation (min of repeats, so a shared machine's noise shows less).
* **Memory**: N objects go through the real informer list path (``keep`` filter and the
  slimming ``transform``), and tracemalloc measures what the cache keeps once the listed
  objects are dropped.
"""

from __future__ import annotations

import gc
import os
import timeit
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench.perf.pods import typical_pod
from webhook.cluster.contextcache import ContextCache, slim_config_map, slim_namespace
from webhook.config.settings import Settings
from webhook.core.context import env_from_config_maps
from webhook.core.injection import mutate
from webhook.core.settings import InjectionSettings

NAMESPACE = "shop"


class _ListOnce:
    """Stands in for :class:`~webhook.cluster.client.Kube` for one list of ``items``."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def list(self, path: str, **_: Any) -> tuple[list[dict[str, Any]], str]:
        items, self.items = self.items, []
        return items, "1"


def synced_cache() -> ContextCache:
    """A cache with the typical pod's namespace traced and every informer marked synced."""
    cache = ContextCache(None, Settings(cluster_context=True))  # type: ignore[arg-type]  # never started
    cache.namespaces._cache[("", NAMESPACE)] = slim_namespace(
        {"metadata": {"name": NAMESPACE, "labels": {"tracing": "enabled"}, "resourceVersion": "1"}}
    )
    cache._traced = frozenset({NAMESPACE})
    assert cache.env_from is not None
    for name in env_from_config_maps(typical_pod()):  # they exist, without OTEL_* keys
        cache.env_from._cache[(NAMESPACE, name)] = slim_config_map(configmap(NAMESPACE, 0, otel=False))
    for informer in cache.informers:
        informer.synced.set()
        informer.lists = 1
    return cache


def microseconds(call: Callable[[], object], number: int) -> float:
    """The least time per call over 15 repeats, in us."""
    return min(timeit.repeat(call, number=number, repeat=15)) / number * 1e6


def time_figures() -> list[str]:
    """context_for alone, and the mutation without and with the context, alternated."""
    pod = typical_pod()
    settings = InjectionSettings(config_hash="0123456789abcdef")
    cache = synced_cache()
    context = cache.context_for(pod, NAMESPACE)
    assert not context.notices, context.notices
    lines = [f"context_for, typical pod: {microseconds(lambda: cache.context_for(pod, NAMESPACE), 5000):.1f} us"]
    without, with_context = [], []
    for _ in range(3):
        without.append(microseconds(lambda: mutate(pod, settings, namespace=NAMESPACE), 200))
        with_context.append(microseconds(lambda: mutate(pod, settings, namespace=NAMESPACE, context=context), 200))
    lines.append(f"mutate without context: {min(without):.0f} us; with it: {min(with_context):.0f} us")
    return lines


def configmap(namespace: str, index: int, otel: bool) -> dict[str, Any]:
    """A ConfigMap as an apiserver lists it: some data, an annotation, maybe an OTEL_* key."""
    data = {"app.properties": "a=b\n" * 20, "LOG_LEVEL": "info", "FEATURE_X": "on"}
    if otel:
        data["OTEL_SERVICE_NAME"] = f"svc-{index}"
    metadata = {
        "namespace": namespace,
        "name": f"cm-{index}",
        "uid": f"{index:036d}",
        "resourceVersion": str(1000 + index),
        "labels": {"app": "a"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}" * 50},
    }
    return {"metadata": metadata, "data": data}


def retained_bytes(cache: ContextCache, informer_name: str, items: list[dict[str, Any]]) -> tuple[int, int]:
    """Bytes the informer keeps after listing ``items``, and how many objects it cached."""
    informer = next(i for i in cache.informers if i.name == informer_name)
    informer.kube = _ListOnce(items)  # type: ignore[assignment]
    del items
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    informer._relist()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, len(informer._cache)


def memory_figures(sizes: tuple[int, ...]) -> list[str]:
    """The envFrom cache for N ConfigMaps (10% with an OTEL_* key) over 100 namespaces, all
    or a tenth of them traced, and the namespace cache for N namespaces."""
    lines = []
    for count in sizes:
        for traced in (100, 10):
            cache = ContextCache(None, Settings(cluster_context=True))  # type: ignore[arg-type]
            cache._traced = frozenset(f"ns-{i}" for i in range(traced))
            items = [configmap(f"ns-{i % 100}", i, i % 10 == 0) for i in range(count)]
            size, cached = retained_bytes(cache, "env-from-configmaps", items)
            lines.append(
                f"envFrom cache, {count:,} ConfigMaps, {traced}% in traced namespaces: {size / 1e6:.2f} MB "
                f"({cached:,} cached, {size / max(cached, 1):.0f} B each)"
            )
        cache = ContextCache(None, Settings(cluster_context=True))  # type: ignore[arg-type]
        namespaces = [
            {"metadata": {"name": f"ns-{i}", "uid": f"{i:036d}", "resourceVersion": str(i), "labels": {"t": "x"}}}
            for i in range(count)
        ]
        size, cached = retained_bytes(cache, "context-namespaces", namespaces)
        lines.append(f"namespace cache, {count:,} namespaces: {size / 1e6:.2f} MB ({size / max(cached, 1):.0f} B each)")
    return lines


def main() -> None:
    """Print the figures, with the machine's load average (timings on a shared machine vary)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load}; {os.cpu_count()} CPUs")
    for line in (*time_figures(), *memory_figures((1_000, 10_000, 100_000))):
        print(line)


if __name__ == "__main__":
    main()
