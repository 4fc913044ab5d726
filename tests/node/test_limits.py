"""The sidecar's memory limit and GOMEMLIMIT are in effect in the running collector."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, container_status, deployment, python_in, unique, wait_pod_ready

pytestmark = pytest.mark.e2e

# The demo app runs as the collector's user (10001), so it may read the collector's environ.
ENVIRON = r"""
import os
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')[0].endswith(b'otelcol'):
            env = dict(l.split('=', 1) for l in open(f'/proc/{pid}/environ').read().split('\0') if '=' in l)
            print(env.get('GOMEMLIMIT', ''))
            break
    except OSError:
        continue
"""


def _sidecar_spec(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["initContainers"] if c["name"] == "otel-collector")


def _cgroup_memory_limit(cluster: NodeCluster, pod: dict[str, Any]) -> int:
    """The kernel's memory limit of the running collector container (cgroup v1 memory)."""
    container_id = container_status(pod, "otel-collector")["containerID"].split("://", 1)[1]
    roots = [Path("/sys/fs/cgroup/memory") / node.cgroup_root for node in cluster.nodes]
    for root in roots:
        for path in root.rglob(container_id):
            return int((path / "memory.limit_in_bytes").read_text())
    raise AssertionError(f"no memory cgroup for container {container_id} under {roots}")


def _run(cluster: NodeCluster, ns: str, annotations: dict[str, str]) -> tuple[dict[str, Any], str, int]:
    name = unique("mem")
    manifest = deployment(name, ns, cluster.images.demo_app.name, annotations=annotations, share_process_namespace=True)
    apply(cluster, manifest)
    pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}")
    gomemlimit = python_in(cluster, ns, pod["metadata"]["name"], ENVIRON).strip()
    return pod, gomemlimit, _cgroup_memory_limit(cluster, pod)


def _bytes(quantity: str) -> int:
    units = {"Mi": 1 << 20, "Gi": 1 << 30, "MiB": 1 << 20, "GiB": 1 << 30}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def test_memory_limit_and_gomemlimit_are_in_effect(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    pod, gomemlimit, limit = _run(cluster, ns, {})
    spec = _sidecar_spec(pod)
    env = {e["name"]: e.get("value") for e in spec["env"]}
    assert limit == _bytes(spec["resources"]["limits"]["memory"])
    assert gomemlimit == env["GOMEMLIMIT"]
    assert 0 < _bytes(gomemlimit) < limit

    # Negative control: an override moves both, so the values above are not constants.
    pod2, gomemlimit2, limit2 = _run(cluster, ns, {"otel-injector.io/memory-limit": "128Mi"})
    assert limit2 == 128 << 20 != limit
    assert gomemlimit2 != gomemlimit
    assert _bytes(gomemlimit2) < limit2
    assert json.loads(pod2["metadata"]["annotations"]["otel-injector.io/status"])["mode"] == "native"
