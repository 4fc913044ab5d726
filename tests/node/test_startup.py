"""The app container starts only once the collector's startup probe has passed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, container_state, container_status, deployment, pods, unique, wait_pod_ready
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_app_starts_after_the_collector_is_up(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    name = unique("order")
    apply(cluster, deployment(name, ns, cluster.images.demo_app.name))
    pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}")
    sidecar, app = container_status(pod, "otel-collector"), container_status(pod, "app")
    assert sidecar["started"] is True
    sidecar_start = _time(sidecar["state"]["running"]["startedAt"])
    app_start = _time(app["state"]["running"]["startedAt"])
    # The collector's own log says when its health check turned ready; the kubelet's
    # startup probe can pass only after that, and the app may start only after the probe.
    logs = cluster.kubectl("logs", "-n", ns, pod["metadata"]["name"], "-c", "otel-collector", "--timestamps").stdout
    ready_lines = [line for line in logs.splitlines() if "Everything is ready" in line or "Server available" in line]
    assert ready_lines, logs
    ready_at = _time(ready_lines[0].split()[0][:26] + "+00:00")
    assert sidecar_start <= app_start
    # startedAt has one-second resolution: compare at that resolution.
    assert ready_at.replace(microsecond=0) <= app_start, (ready_at, app_start)


def test_negative_control_a_sidecar_that_never_gets_ready_blocks_the_app(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace()
    name = unique("blocked")
    # The pause image answers no health check, so the startup probe never passes.
    annotations = {"otel-injector.io/image": cluster.images.pause.name}
    apply(cluster, deployment(name, ns, cluster.images.demo_app.name, annotations=annotations))

    def sidecar_running() -> dict[str, object] | None:
        found = pods(cluster, ns, f"app.kubernetes.io/name={name}")
        if found and container_state(found[0], "otel-collector").get("running"):
            return found[0]
        return None

    wait_for("the pause-image sidecar to run", sidecar_running, timeout=60, interval=0.5)
    import time

    time.sleep(8)  # several probe periods
    (pod,) = pods(cluster, ns, f"app.kubernetes.io/name={name}")
    assert container_status(pod, "otel-collector")["started"] is False
    assert "running" not in container_state(pod, "app"), "the app must wait for the sidecar"
