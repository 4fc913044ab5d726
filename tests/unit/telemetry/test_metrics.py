"""Prometheus metrics: per-label counts, exposition, and per-instance registries."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from webhook import __version__
from webhook.telemetry.metrics import CONTENT_TYPE, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text exposition, keyed by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_admission_counter_counts_per_label() -> None:
    metrics = Metrics()
    metrics.admissions.labels(result="injected", reason="injected").inc()
    metrics.admissions.labels(result="injected", reason="injected").inc()
    metrics.admissions.labels(result="skipped", reason="opted-out").inc()
    found = samples(metrics)
    assert found[("otel_injector_admissions_total", (("reason", "injected"), ("result", "injected")))] == 2
    assert found[("otel_injector_admissions_total", (("reason", "opted-out"), ("result", "skipped")))] == 1
    assert ("otel_injector_admissions_total", (("reason", "error"), ("result", "error"))) not in found


def test_fallbacks_and_invalid_requests() -> None:
    metrics = Metrics()
    metrics.fallbacks.labels(reason="invalid-image").inc(3)
    metrics.invalid_requests.labels(status="400").inc()
    metrics.invalid_requests.labels(status="413").inc()
    metrics.invalid_requests.labels(status="400").inc()
    found = samples(metrics)
    assert found[("otel_injector_fallbacks_total", (("reason", "invalid-image"),))] == 3
    assert found[("otel_injector_invalid_requests_total", (("status", "400"),))] == 2
    assert found[("otel_injector_invalid_requests_total", (("status", "413"),))] == 1


def test_histograms() -> None:
    metrics = Metrics()
    metrics.latency.labels(result="injected").observe(0.003)
    metrics.patch_operations.observe(9)
    found = samples(metrics)
    latency = "otel_injector_admission_duration_seconds"
    assert found[(f"{latency}_bucket", (("le", "0.002"), ("result", "injected")))] == 0
    assert found[(f"{latency}_bucket", (("le", "0.005"), ("result", "injected")))] == 1
    assert found[(f"{latency}_count", (("result", "injected"),))] == 1
    assert found[("otel_injector_patch_operations_bucket", (("le", "8.0"),))] == 0
    assert found[("otel_injector_patch_operations_bucket", (("le", "16.0"),))] == 1
    assert found[("otel_injector_patch_operations_sum", ())] == 9


def test_render_names_every_metric_and_has_no_created_series() -> None:
    text = Metrics().render().decode()
    for name, kind in (
        ("otel_injector_admissions_total", "counter"),
        ("otel_injector_fallbacks_total", "counter"),
        ("otel_injector_invalid_requests_total", "counter"),
        ("otel_injector_admission_duration_seconds", "histogram"),
        ("otel_injector_patch_operations", "histogram"),
        ("otel_injector_build_info", "gauge"),
    ):
        assert f"# TYPE {name} {kind}\n" in text, name
    assert "_created" not in text
    assert f'otel_injector_build_info{{version="{__version__}"}} 1.0' in text


def test_instances_do_not_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.admissions.labels(result="injected", reason="injected").inc(5)
    key = ("otel_injector_admissions_total", (("reason", "injected"), ("result", "injected")))
    assert samples(first)[key] == 5
    assert key not in samples(second)
    assert first.registry is not second.registry


def test_content_type() -> None:
    assert CONTENT_TYPE.startswith("text/plain; version=")
