"""The ``stale --missing`` report: text and JSON, grouped, with reasons and notes."""

from __future__ import annotations

import json

from webhook.cluster.missingreport import render_missing_json, render_missing_text
from webhook.cluster.stale import StalePod, StaleWorkload, group_by_workload
from webhook.core.workload import Workload

WHY = "no otel-collector sidecar, but the rules inject it (namespace labelled tracing=enabled)"


def groups() -> list[StaleWorkload]:
    return group_by_workload(
        [
            StalePod("shop", "web-1", Workload("Deployment", "web"), (WHY,)),
            StalePod("shop", "web-2", Workload("Deployment", "web"), (WHY,)),
            StalePod("shop", "bare", None, (WHY,)),
        ]
    )


def test_text_groups_by_workload_and_says_what_to_do() -> None:
    text = render_missing_text(groups(), restart=False)
    assert text.splitlines() == [
        "Deployment shop/web: 2 pod(s) without the otel-collector sidecar; roll it with --restart",
        f"  web-1: {WHY}",
        f"  web-2: {WHY}",
        "Pod shop/bare: 1 pod(s) without the otel-collector sidecar; "
        "bare pod: cannot be restarted; delete and re-create it",
        f"  bare: {WHY}",
        "3 pod(s) missing the sidecar in 2 workload(s)",
    ]
    assert render_missing_text([], restart=False) == "no pods missing the sidecar\n"


def test_json_has_every_pod_and_reason() -> None:
    document = json.loads(render_missing_json(groups()))
    assert document["missingPods"] == 3
    web = next(w for w in document["workloads"] if w["name"] == "web")
    assert web["restartable"] is True
    assert web["pods"] == [{"name": "web-1", "reasons": [WHY]}, {"name": "web-2", "reasons": [WHY]}]
    bare = next(w for w in document["workloads"] if w["kind"] == "Pod")
    assert bare["restartable"] is False
    assert "cannot be restarted" in bare["note"]
