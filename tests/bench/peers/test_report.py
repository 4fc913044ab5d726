"""bench.peers.report: records, targets, table and plot from a made-up run (no builds, no timing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.peers import report
from bench.peers.webhooks import SHAPES, WEBHOOKS

LATENCY = {"otel-injector": 6.0, "istio": 9.0, "kyverno": 30.0, "limit": 5.5}


def _run(unavailable: dict[str, str] | None = None) -> dict[str, Any]:
    creations: dict[str, Any] = {}
    for shape in SHAPES:
        lanes: dict[str, list[float]] = {"none": [4.0] * 100}
        apiserver = {}
        for webhook in WEBHOOKS:
            if webhook in (unavailable or {}):
                continue
            lanes[webhook] = [LATENCY[webhook]] * 99 + [LATENCY[webhook] * 3]
            lanes[f"none:{webhook}"] = [4.5] * 100
            apiserver[webhook] = {"count": 100, "median_ms_interpolated": 1.5, "p99_ms_interpolated": 4.0}
        creations[shape] = {"lanes": lanes, "apiserver": apiserver}
    http = {
        w: {
            s: {"max_rps": 100.0, "cpu_ms": 1.25, "patch_bytes": 0 if s == "injected" else 6400, "rss_mib": 80.0}
            for s in SHAPES
        }
        for w in WEBHOOKS
    }
    return {
        "meta": {"started": "today", "count": 100, "versions": {"istio": "v0.0.0-x"}},
        "unavailable": unavailable or {},
        "creations": creations,
        "http": http,
    }


def test_every_webhook_and_shape_has_a_record_with_the_contract_keys() -> None:
    recs = report.records(_run())
    assert [(r["webhook"], r["pod"]) for r in recs] == [(w, s) for w in WEBHOOKS for s in SHAPES]
    for r in recs:
        assert set(report.RECORD_KEYS) <= set(r)


def test_added_latency_is_the_webhook_lane_minus_its_own_baseline() -> None:
    recs = {(r["webhook"], r["pod"]): r for r in report.records(_run())}
    assert recs["istio", "typical"]["added_p50_ms"] == pytest.approx(5.0)  # 9 - 4
    assert recs["istio", "typical"]["added_p99_ms"] == pytest.approx(5.0)  # p99 of 100 = 99th value
    # the injected shape is measured against the same body created without a webhook
    assert recs["istio", "injected"]["added_p50_ms"] == pytest.approx(4.5)  # 9 - 4.5
    assert recs["istio", "injected"]["baseline_p50_ms"] == pytest.approx(4.5)
    assert recs["kyverno", "large"]["apiserver_admission_p50_ms"] == 1.5
    assert recs["limit", "typical"]["patch_bytes"] == 6400


def test_a_peer_that_could_not_run_keeps_its_records_with_the_reason() -> None:
    recs = report.records(_run({"kyverno": "could not be built: go: missing module"}))
    kyverno = [r for r in recs if r["webhook"] == "kyverno"]
    assert len(kyverno) == len(SHAPES)
    assert all(r["added_p50_ms"] is None and "could not be built" in r["error"] for r in kyverno)
    text = report.markdown(_run({"kyverno": "could not be built: go: missing module"}), recs)
    assert "not run: could not be built: go: missing module" in text
    assert "## Not run" in text


def test_targets_compare_with_each_peer_and_the_limit() -> None:
    targets = {t["target"]: t for t in report.targets(report.records(_run()))}
    assert targets["typical: otel-injector adds less than istio"]["met"] is True
    assert targets["typical: otel-injector adds less than kyverno"]["met"] is True
    limit = targets["typical: otel-injector within 1.2x the zero-work limit"]
    assert limit["met"] is False  # (6 - 4) / (5.5 - 4) = 1.33
    assert limit["measured"].startswith("1.33x")


def test_a_missing_figure_makes_a_target_unknown_not_met_or_missed() -> None:
    targets = report.targets(report.records(_run({"istio": "did not start"})))
    istio = [t for t in targets if "istio" in t["target"]]
    assert istio
    assert all(t["met"] is None and "did not start" in t["measured"] for t in istio)


def test_the_table_has_one_row_per_record_and_the_fairness_notes() -> None:
    run = _run()
    text = report.markdown(run, report.records(run))
    rows = [
        line
        for line in text.splitlines()
        if line.startswith(("| otel-injector |", "| istio |", "| kyverno |", "| limit |"))
    ]
    assert len(rows) == len(WEBHOOKS) * len(SHAPES)
    assert "kyverno-policy.yaml" in text
    assert "## Fairness" in text


def test_write_puts_the_table_the_plot_and_the_policy_beside_the_results(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("kind: ClusterPolicy\n", encoding="utf-8")
    run = _run()
    report.write(run, report.records(run), tmp_path / "out", policy)
    assert (tmp_path / "out" / "PEERS.md").read_text(encoding="utf-8").startswith("# otel-injector and its peers")
    assert (tmp_path / "out" / "kyverno-policy.yaml").read_text(encoding="utf-8") == "kind: ClusterPolicy\n"
    assert (tmp_path / "out" / "peers.png").stat().st_size > 1000


def test_failed_creations_are_counted_and_listed() -> None:
    run = _run()
    run["creations"]["injected"]["errors"] = {"otel-injector": ["connection: EOF occurred in violation of protocol"]}
    recs = report.records(run)
    (ours,) = [r for r in recs if r["webhook"] == "otel-injector" and r["pod"] == "injected"]
    assert ours["creation_errors"] == 1
    text = report.markdown(run, recs)
    assert "100 (1 failed)" in text
    assert "* injected, otel-injector: 1, first: connection: EOF" in text


def test_a_slow_webhook_rate_keeps_a_decimal() -> None:
    run = _run()
    run["http"]["kyverno"]["large"]["max_rps"] = 0.4
    assert "| 0.4 |" in report.markdown(run, report.records(run))
