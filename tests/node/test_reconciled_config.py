"""The ConfigMap the reconciler copies is the one the collector runs with: a change to the
source config, rolled out by ``otel-injector stale --restart``, shows in new spans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from bench.localcluster.injector import INJECTOR_NAMESPACE, LocalInjector
from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import APP_PORT, apply, deployment, find_spans, python_in, resource, unique, wait_pod_ready
from tests.support import wait_for

pytestmark = pytest.mark.e2e

SOURCE = "otel-injector-collector-config"
REQUEST = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{APP_PORT}/', timeout=10).status)"
MARK = "bench.config.revision"


def _source(cluster: NodeCluster) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        cluster.kubectl("get", "configmap", SOURCE, "-n", INJECTOR_NAMESPACE, "-o", "json").stdout
    )
    return data


def _request_and_find(cluster: NodeCluster, ns: str, name: str, pod: str, revision: str | None) -> dict[str, str]:
    assert python_in(cluster, ns, pod, REQUEST).strip() == "200"

    def newest() -> dict[str, str] | None:
        for trace, span in find_spans(cluster, service=name):
            attrs = resource(trace, span)
            if attrs.get("k8s.pod.name") == pod and attrs.get(MARK) == revision:
                return attrs
        return None

    result: dict[str, str] = wait_for(f"a span of {pod} with {MARK}={revision}", newest, timeout=60, interval=1)
    return result


def test_source_change_reaches_running_collectors_after_stale_restart(
    cluster: NodeCluster, node_injector: LocalInjector, namespace: Callable[..., str]
) -> None:
    ns = namespace()
    name = unique("cfg")
    apply(cluster, deployment(name, ns, cluster.images.demo_app.name))
    pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}")["metadata"]["name"]
    # Negative control: before the change the spans do not carry the mark.
    _request_and_find(cluster, ns, name, pod, None)

    original = _source(cluster)
    data = original["data"]
    assert isinstance(data, dict)
    config = yaml.safe_load(data["config.yaml"])
    config["processors"]["resource"]["attributes"].append({"key": MARK, "value": "2", "action": "upsert"})
    changed = {**original, "data": {**data, "config.yaml": yaml.safe_dump(config)}}
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        changed["metadata"].pop(key, None)
    try:
        apply(cluster, changed)
        wait_for(
            "the reconciler to copy the new config",
            lambda: (
                MARK in cluster.kubectl("get", "configmap", "otel-collector-sidecar", "-n", ns, "-o", "yaml").stdout
            ),
            timeout=30,
        )
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "POD_NAMESPACE": INJECTOR_NAMESPACE}
        done = subprocess.run(
            [sys.executable, "-m", "webhook", "stale", "-n", ns, "--restart"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 3), done.stderr
        assert name in done.stdout, done.stdout

        def new_pod() -> str | None:
            found = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}")["metadata"]["name"]
            return found if found != pod else None

        rolled = wait_for("the rolled-out pod", new_pod, timeout=120, interval=1)
        attrs = _request_and_find(cluster, ns, name, rolled, "2")
        assert attrs[MARK] == "2"
    finally:
        restore = {**original}
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            restore["metadata"].pop(key, None)
        apply(cluster, restore)
