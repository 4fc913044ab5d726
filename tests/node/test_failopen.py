"""Fail-open: with the webhook down a pod still runs, without a sidecar, and its app works."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.localcluster.injector import LocalInjector
from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import APP_PORT, apply, deployment, python_in, unique, wait_pod_ready

pytestmark = pytest.mark.e2e

REQUEST = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{APP_PORT}/', timeout=10).status)"


def test_pod_runs_without_sidecar_while_the_webhook_is_down(
    cluster: NodeCluster, node_injector: LocalInjector, namespace: Callable[..., str]
) -> None:
    ns = namespace()
    up, down = unique("up"), unique("down")
    image = cluster.images.demo_app.name
    # Control: with the webhook up the same Deployment gets the sidecar.
    apply(cluster, deployment(up, ns, image))
    with_sidecar = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={up}")
    assert [c["name"] for c in with_sidecar["spec"]["initContainers"]] == ["otel-collector"]

    node_injector.process.stop()
    try:
        apply(cluster, deployment(down, ns, image))
        pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={down}", timeout=120)
    finally:
        node_injector.process.start()
    assert not pod["spec"].get("initContainers")
    assert python_in(cluster, ns, pod["metadata"]["name"], REQUEST).strip() == "200"
