"""The node story's pure parts, and its one-line fallback where no node can run."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench.demo import realnode, story


def _trace() -> dict[str, Any]:
    processes = {
        "p1": {"serviceName": "frontend", "tags": [{"key": "k8s.pod.name", "value": "frontend-1"}]},
        "p2": {"serviceName": "backend", "tags": [{"key": "k8s.pod.name", "value": "backend-1"}]},
    }
    spans = [
        {"spanID": "a", "processID": "p1", "operationName": "GET /", "startTime": 1, "duration": 3000},
        {
            "spanID": "b",
            "processID": "p1",
            "operationName": "GET",
            "startTime": 2,
            "duration": 2000,
            "references": [{"refType": "CHILD_OF", "spanID": "a"}],
        },
        {
            "spanID": "c",
            "processID": "p2",
            "operationName": "GET /",
            "startTime": 3,
            "duration": 1000,
            "references": [{"refType": "CHILD_OF", "spanID": "b"}],
        },
    ]
    return {"traceID": "t1", "processes": processes, "spans": spans}


def test_app_trace_renders_as_a_tree_with_each_services_resource_once() -> None:
    lines = realnode._render_app_trace(_trace())
    assert lines[0] == "trace t1"
    assert lines[1] == "frontend: GET / (3.0 ms)"
    assert lines[2].strip() == "resource: k8s.pod.name=frontend-1, service.name=frontend"
    assert lines[3] == "  frontend: GET (2.0 ms)"
    assert lines[4] == "    backend: GET / (1.0 ms)"
    assert "k8s.pod.name=backend-1" in lines[5]
    assert len(lines) == 6  # frontend's resource is not repeated for its second span


def test_without_a_node_the_demo_says_why_and_runs_the_node_less_story(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(realnode, "node_support_problem", lambda: "not root")
    called: list[argparse.Namespace] = []

    def node_less(args: argparse.Namespace) -> int:
        called.append(args)
        return 0

    monkeypatch.setattr(story, "run", node_less)
    args = argparse.Namespace(once=True)
    assert realnode.run(args) == 0
    assert called == [args]
    out = capsys.readouterr().out.splitlines()
    assert out == ["No node on this machine (not root): showing the admission side only."]
