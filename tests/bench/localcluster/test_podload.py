"""The pure parts of the pod-load driver: the pod it sends, reading its answer, the
percentile, and the apiserver histogram."""

from __future__ import annotations

import json
import math

from bench.localcluster.podload import (
    Creation,
    WebhookReading,
    config_hash,
    figures,
    has_sidecar,
    parse_webhook_metrics,
    percentile,
    pod_manifest,
)

_L = 'name="namespace.otel-injector.io",operation="CREATE",rejected="false",type="admit"'
_D = "apiserver_admission_webhook_admission_duration_seconds"
METRICS = "\n".join(
    [
        f"# HELP {_D} x",
        f'{_D}_bucket{{{_L},le="0.005"}} 0',
        f'{_D}_bucket{{{_L},le="0.025"}} 90',
        f'{_D}_bucket{{{_L},le="0.1"}} 100',
        f'{_D}_bucket{{{_L},le="+Inf"}} 100',
        f"{_D}_count{{{_L}}} 100",
        f'{_D}_count{{name="someone.else.io",operation="CREATE",rejected="false",type="admit"}} 7',
        'apiserver_admission_webhook_fail_open_count{name="namespace.otel-injector.io",type="admit"} 2',
        "",
    ]
)


def test_the_pod_is_gated_so_it_is_admitted_but_never_scheduled() -> None:
    pod = pod_manifest("load-00001", "img")
    assert pod["spec"]["schedulingGates"]
    assert pod["metadata"]["name"] == "load-00001"


def test_sidecar_and_hash_are_read_from_the_admitted_pod() -> None:
    status = json.dumps({"configHash": "abc"})
    pod = {
        "metadata": {"annotations": {"otel-injector.io/status": status}},
        "spec": {"initContainers": [{"name": "otel-collector"}]},
    }
    assert has_sidecar(pod)
    assert config_hash(pod) == "abc"
    assert not has_sidecar({"spec": {"containers": [{"name": "app"}]}})
    assert config_hash({"metadata": {"annotations": {"otel-injector.io/status": "{"}}}) == ""


def test_percentile_is_nearest_rank() -> None:
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert math.isnan(percentile([], 0.99))


def test_histogram_sums_our_webhooks_and_interpolates() -> None:
    reading = parse_webhook_metrics(METRICS)
    assert reading.count == 100
    assert reading.fail_open == 2
    # 99 of 100 falls in (0.025, 0.1]: 9 of its 10 observations.
    assert abs(reading.quantile(0.99) - (0.025 + 0.075 * 0.9)) < 1e-9
    assert math.isnan(WebhookReading().quantile(0.99))


def test_difference_and_a_restarted_apiserver() -> None:
    later = parse_webhook_metrics(METRICS)
    earlier = WebhookReading({0.025: 40.0, 0.1: 40.0, math.inf: 40.0}, 40.0, 1.0)
    diff = later.minus(earlier)
    assert (diff.count, diff.fail_open) == (60.0, 1.0)
    restarted = WebhookReading({math.inf: 5.0}, 5.0, 0.0)
    assert restarted.minus(later) == restarted


def test_figures_count_failures_apart_from_a_known_outage() -> None:
    def creation(i: int, status: int, sidecar: bool) -> Creation:
        return Creation(index=i, due=0, sent=0, seconds=0.01 * i, status=status, sidecar=sidecar)

    creations = [creation(0, 201, True), creation(1, 201, False), creation(2, 0, False), creation(3, 500, False)]
    row = figures("s", creations, WebhookReading(), down=[creations[2]])
    assert (row.created, row.failed, row.without_sidecar, row.apiserver_down) == (2, 1, 1, 1)
    assert "| s | 2 | 1 | 1 |" in row.row()
