"""A sidecar that cannot start blocks its app, so the default and every accepted override
must give a sidecar that starts: each variant below must reach Ready."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, deployment, unique, wait_pod_ready

pytestmark = pytest.mark.e2e

P = "otel-injector.io/"
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "container-mode": {P + "sidecar-mode": "container"},
    "native-mode": {P + "sidecar-mode": "native"},
    "small-resources": {P + "cpu-request": "10m", P + "memory-request": "32Mi", P + "memory-limit": "64Mi"},
    "large-resources": {P + "cpu-limit": "2", P + "memory-limit": "1Gi", P + "memory-request": "128Mi"},
    "service-name": {P + "service-name": "checkout-v2"},
    "containers": {P + "containers": "app"},
}


def test_default_and_every_accepted_override_start(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    # The image and config overrides, pointed at things that exist: the same collector
    # image by its full name, and a copy of the collector config under another name.
    config = cluster.kubectl("get", "configmap", "otel-collector-sidecar", "-n", ns, "-o", "json").stdout
    import json

    copy = json.loads(config)
    copy["metadata"] = {"name": "my-collector-config", "namespace": ns}
    apply(cluster, copy)
    variants = {
        **VARIANTS,
        "image": {P + "image": cluster.images.collector.name},
        "config": {P + "config": "my-collector-config"},
    }
    names = {variant: unique(variant.replace("_", "-")[:20]) for variant in variants}
    apply(
        cluster, *(deployment(names[v], ns, cluster.images.demo_app.name, annotations=a) for v, a in variants.items())
    )
    failures = []
    for variant, name in names.items():
        try:
            pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}", timeout=180)
        except AssertionError as exc:
            failures.append(f"{variant}: {exc}")
            continue
        all_containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
        assert any(c["name"] == "otel-collector" for c in all_containers), variant
    assert not failures, "\n".join(failures)
