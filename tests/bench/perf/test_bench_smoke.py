"""The bench's own logic on tiny, made-up inputs: pod shapes, fits, metric parsing and the
report. Nothing here is timed or starts a server; ``python -m bench`` does that."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.perf import pods
from bench.perf.apiserver import histogram_delta, parse_histogram
from bench.perf.report import judge, markdown, write_all
from bench.perf.wrk import percentile
from webhook.core.decision import Reason, decide
from webhook.core.settings import InjectionSettings

pytestmark = pytest.mark.bench_smoke


def test_pod_shapes_are_what_the_issue_asks_for() -> None:
    typical = pods.typical_pod()
    assert len(typical["spec"]["containers"]) == 3
    assert 8_000 <= len(orjson.dumps(typical)) <= 12_000
    large = pods.large_pod()
    assert len(large["spec"]["containers"]) == 50
    assert sum(len(c["env"]) for c in large["spec"]["containers"]) == 2000
    settings = InjectionSettings()
    assert decide(typical, namespace=pods.NAMESPACE, operation="CREATE", settings=settings).inject
    skipped = decide(pods.injected_pod(), namespace=pods.NAMESPACE, operation="CREATE", settings=settings)
    assert skipped.reason is Reason.ALREADY_INJECTED


def test_review_body_is_an_admission_review() -> None:
    review = orjson.loads(pods.review_body("typical"))
    assert review["kind"] == "AdmissionReview"
    assert review["request"]["object"]["spec"]["containers"][0]["name"] == "checkout"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert math.isnan(percentile([], 50))


def test_fit_tells_linear_from_quadratic() -> None:
    pytest.importorskip("numpy")
    from bench.perf.scaling import Point, fit

    def points(f: Any) -> list[Point]:
        return [Point(n, 0, f(n), 0.0, 0) for n in (10, 30, 100, 300, 1000, 3000, 10000)]

    linear = fit(points(lambda n: 0.1 + 0.0003 * n))
    assert linear["linear"]
    assert abs(linear["exponent"] - 1) < 0.02
    quadratic = fit(points(lambda n: 0.1 + 0.0003 * n + 1e-7 * n * n))
    assert not quadratic["linear"]


_LABELS = 'name="a",operation="CREATE",rejected="false",type="admit"'
_NAME = "apiserver_admission_webhook_admission_duration_seconds"
METRICS = "\n".join(
    [
        "# HELP x",
        f'{_NAME}_bucket{{{_LABELS},le="0.005"}} 8',
        f'{_NAME}_bucket{{{_LABELS},le="0.025"}} 10',
        f'{_NAME}_bucket{{{_LABELS},le="+Inf"}} 10',
        f"{_NAME}_sum{{{_LABELS}}} 0.03",
        f"{_NAME}_count{{{_LABELS}}} 10",
        f'{_NAME}_count{{name="a",operation="UPDATE",rejected="false",type="admit"}} 99',
    ]
)


def test_histogram_delta_from_apiserver_metrics() -> None:
    name = "apiserver_admission_webhook_admission_duration_seconds"
    after = parse_histogram(METRICS, name, {"type": "admit", "operation": "CREATE"})
    assert after["count"] == 10
    before = {"buckets": {}, "sum": 0.0, "count": 0.0}
    delta = histogram_delta(before, after)
    assert delta["count"] == 10
    assert delta["mean_ms"] == 3.0
    assert delta["median_ms_interpolated"] == pytest.approx(3.125)


PACKAGES = ("otel-injector", "uvicorn", "uvloop", "httptools", "fastapi", "starlette", "orjson", "opentelemetry-sdk")


def _results() -> dict[str, Any]:
    def run(kind: str, tracing: bool, shape: str, rps: float) -> dict[str, Any]:
        return {
            "kind": kind,
            "workers": 1,
            "tracing": tracing,
            "shape": shape,
            "body_bytes": 10_000,
            "max_rps": rps,
            "closed_runs": [{"rps": rps}],
            "cpu_ms_per_request": 0.5,
            "open": [
                {
                    "rate": r,
                    "achieved_rps": r,
                    "p50_ms": 1.0,
                    "p90_ms": 2.0,
                    "p99_ms": 3.0,
                    "p999_ms": 4.0,
                    "max_ms": 5.0,
                    "kept_up": True,
                }
                for r in (50, 200)
            ],
            "headline_p99_runs_ms": [3.0],
            "peak_rss_mib_per_worker": 80.0,
        }

    return {
        "meta": {
            "quick": True,
            "finished": "now",
            "seconds": 60,
            "machine": {
                "cpu_model": "cpu",
                "cores": 2,
                "memory_gib": 24,
                "kernel": "6",
                "python": "3.11",
                "wrk": "wrk 4.1",
                "load_average_at_start": (0.1, 0.1, 0.1),
                "packages": dict.fromkeys(PACKAGES, "1"),
            },
        },
        "http": {
            "runs": [run("ceiling", False, "typical", 2000.0), run("webhook", True, "typical", 1200.0)],
            "plan": {
                "closed_connections": 16,
                "closed_seconds": 4,
                "closed_repeats": 1,
                "open_connections": 8,
                "capacity_fraction": 0.85,
            },
            "span_queue_overflowed": {},
            "trace_backend": {"kind": "jaeger", "version": "v2"},
        },
    }


def test_targets_are_judged_against_the_issue() -> None:
    targets = {t["target"]: t for t in judge(_results())}
    assert targets["typical pod, 1 worker, tracing on: max throughput"]["met"] is True
    assert targets["typical pod, 1 worker, tracing on: p99 at 200/s"]["met"] is True
    assert targets["typical pod, 1 worker, tracing on: share of the no-op ceiling"]["measured"] == "0.60"
    assert targets["RSS per worker, peak under load"]["met"] is True


def test_report_writes_markdown_json_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = _results()
    write_all(results, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "| typical |" in text
    assert (tmp_path / "results.json").exists()
    assert (tmp_path / "latency_vs_load.png").stat().st_size > 10_000
    assert "## Targets" in markdown(results)
