"""The repair metrics: names as the alerts and dashboard use them, and a gauge whose
series follow the namespaces of the last pass."""

from __future__ import annotations

from webhook.telemetry.metrics import Metrics
from webhook.telemetry.repairmetrics import RepairMetrics


def test_the_names_and_labels_in_the_shared_registry() -> None:
    app = Metrics()
    metrics = RepairMetrics(app.registry)
    metrics.set_missing({"shop": 2, "quiet": 0})
    metrics.restarts.labels(reason="missing-sidecar", kind="Deployment").inc()
    metrics.deferred.labels(reason="rate-limited").inc()
    text = app.render().decode()
    assert 'otel_injector_pods_missing_sidecar{namespace="shop"} 2.0' in text
    assert 'otel_injector_pods_missing_sidecar{namespace="quiet"} 0.0' in text
    assert 'otel_injector_workload_restarts_total{kind="Deployment",reason="missing-sidecar"} 1.0' in text
    assert 'otel_injector_workload_restarts_deferred_total{reason="rate-limited"} 1.0' in text


def test_set_missing_replaces_the_series() -> None:
    metrics = RepairMetrics()
    metrics.set_missing({"a": 1, "b": 2})
    metrics.set_missing({"b": 0})
    get = metrics.registry.get_sample_value
    assert get("otel_injector_pods_missing_sidecar", {"namespace": "a"}) is None
    assert get("otel_injector_pods_missing_sidecar", {"namespace": "b"}) == 0
    metrics.set_missing({})
    assert get("otel_injector_pods_missing_sidecar", {"namespace": "b"}) is None
