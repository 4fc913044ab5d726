"""The trace path: one Jaeger trace holds the apiserver's spans and otel-injector's, and
the webhook's server span (with its phases as events) hangs under the apiserver's "Call
mutating webhook" span."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from bench.localcluster.controlplane import ControlPlane
from bench.localcluster.traces import find_admission_trace
from bench.localcluster.tracetree import ancestors, build_tree, find_span, render
from tests.e2e.conftest import wait_for_pods

pytestmark = pytest.mark.e2e


def test_apiserver_and_webhook_spans_share_one_trace(
    control_plane: ControlPlane, namespace: Callable[..., str]
) -> None:
    ns = namespace(traced=True)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "traced", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "traced"}},
            "template": {
                "metadata": {"labels": {"app": "traced"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    wait_for_pods(control_plane, ns, "app=traced")
    trace = find_admission_trace(control_plane, namespace=ns)
    roots = build_tree(trace)
    services = {node.service for root in roots for node in root.walk()}
    assert {"apiserver", "otel-injector"} <= services, render(roots)

    server = find_span(roots, service="otel-injector", name="POST /mutate")
    call = find_span(roots, service="apiserver", name="Call mutating webhook")
    assert server is not None, render(roots)
    assert call is not None, render(roots)
    assert call in ancestors(roots, server), render(roots)
    assert server.tags["k8s.namespace.name"] == ns
    assert server.tags["otel_injector.decision"] == "injected"
    assert server.tags["otel_injector.admission.uid"]
    # The phases are events of the server span (one span per admission), a timeline.
    assert [e.name for e in server.events] == ["decode review", "decide", "mutate", "build patch", "answer"], render(
        roots
    )
    offsets = [e.time_us - server.start_us for e in server.events]
    assert offsets == sorted(offsets), render(roots)
    assert offsets[0] >= 0, render(roots)
    assert offsets[-1] <= server.duration_us, render(roots)
    assert server.children == [], render(roots)
    # In 1.36 the root is the "authentication" span; the request span sits under it.
    above = [node.name for node in ancestors(roots, call) if node.service == "apiserver"]
    assert "POST /api/v1/namespaces/{:namespace}/pods" in above, render(roots)
