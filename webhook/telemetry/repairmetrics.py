"""Prometheus metrics of the leader's repair and rollout loops (:mod:`webhook.cluster.missing`,
:mod:`webhook.cluster.restarts`), registered in the app's registry so ``/metrics`` shows
them beside the admission metrics.

* ``otel_injector_pods_missing_sidecar{namespace}``: pods the rules would inject that run
  without the sidecar, from the leader's informer view. Exported by the leader only (a
  follower exports no series, so ``sum()`` over replicas is the count); every namespace
  labelled ``tracing=enabled`` has a series, 0 when none is missing.
* ``otel_injector_workload_restarts_total{reason,kind}``: rollouts started, reason
  ``missing-sidecar``, ``config-outdated`` or ``image-outdated``.
* ``otel_injector_workload_restarts_deferred_total{reason}``: a wanted rollout held back
  by the budget (``rate-limited``, ``cooling-down``), counted once per hold.

Label values are namespaces (bounded by the cluster's), the three reasons and the three
kinds.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge


class RepairMetrics:
    """The three metrics of the module docstring, in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.missing = Gauge(
            "otel_injector_pods_missing_sidecar",
            "Running pods the injection rules would inject that have no sidecar, by namespace (leader only).",
            ["namespace"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "otel_injector_workload_restarts",
            "Rollouts started by the leader, by reason (missing-sidecar, config-outdated, image-outdated) and kind.",
            ["reason", "kind"],
            registry=self.registry,
        )
        self.deferred = Counter(
            "otel_injector_workload_restarts_deferred",
            "Wanted rollouts held back by the restart budget, by reason (rate-limited, cooling-down).",
            ["reason"],
            registry=self.registry,
        )
        self._namespaces: set[str] = set()

    def set_missing(self, counts: Mapping[str, int]) -> None:
        """Replace the gauge's series with ``counts`` (namespace -> pods); ``{}`` clears it."""
        for gone in self._namespaces - set(counts):
            self.missing.remove(gone)
        for namespace, count in counts.items():
            self.missing.labels(namespace=namespace).set(count)
        self._namespaces = set(counts)
