"""Prometheus metrics for admissions.

Each :class:`Metrics` owns its own registry, so tests (and several apps in one process)
never see each other's counts. Label values are the closed sets from
:class:`~webhook.core.decision.Reason` and the notice codes, so cardinality stays bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from webhook import __version__

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The *_created series double the scrape size and no dashboard of ours uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Admission latency is a few milliseconds when healthy; the buckets resolve that range and
# still show the pathological seconds-per-pod cases other injectors have had.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The injector's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.admissions = Counter(
            "otel_injector_admissions",
            "Admission reviews answered, by result (injected, skipped, error) and reason.",
            ["result", "reason"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "otel_injector_fallbacks",
            "Fallbacks taken while injecting (e.g. an invalid override annotation), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.invalid_requests = Counter(
            "otel_injector_invalid_requests",
            "Requests answered with a 4xx because they were not a usable AdmissionReview, by status.",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "otel_injector_admission_duration_seconds",
            "Time to answer an admission review, from body received to response built.",
            ["result"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.patch_operations = Histogram(
            "otel_injector_patch_operations",
            "JSON patch operations per injected pod.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        build = Gauge(
            "otel_injector_build_info",
            "Always 1; the version label says which otel-injector is running.",
            ["version"],
            registry=self.registry,
        )
        build.labels(version=__version__).set(1)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
