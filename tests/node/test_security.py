"""A pod in a namespace enforcing Pod Security ``restricted`` runs Ready, and its collector
really runs non-root on a read-only root filesystem (read from /proc via kubectl exec)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, deployment, python_in, unique, wait_pod_ready

pytestmark = pytest.mark.e2e

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}

# Runs in the app container, which shares the pod's PID namespace: finds the collector's
# process and reports its real uid and how its root filesystem is mounted.
PROBE = r"""
import json, os
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\0')[0]
    except OSError:
        continue
    if cmd.endswith(b'otelcol'):
        uid = int([l for l in open(f'/proc/{pid}/status') if l.startswith('Uid:')][0].split()[1])
        root = [l.split() for l in open(f'/proc/{pid}/mountinfo') if l.split()[4] == '/'][0]
        print(json.dumps({'uid': uid, 'root_options': root[5]}))
        break
"""


def test_restricted_namespace_runs_a_non_root_read_only_collector(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace(labels=RESTRICTED)
    name = unique("strict")
    apply(cluster, deployment(name, ns, cluster.images.demo_app.name, share_process_namespace=True))
    pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}")
    found = json.loads(python_in(cluster, ns, pod["metadata"]["name"], PROBE))
    assert found["uid"] != 0
    assert found["uid"] == 10001  # the official image's user
    assert "ro" in found["root_options"].split(",")


def test_negative_control_restricted_namespace_rejects_a_root_pod(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace(labels=RESTRICTED)
    manifest = deployment(unique("root"), ns, cluster.images.demo_app.name)
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": unique("root"), "namespace": ns},
        "spec": {**manifest["spec"]["template"]["spec"]},
    }
    pod["spec"]["containers"] = [{**pod["spec"]["containers"][0], "securityContext": {"runAsUser": 0}}]
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert "restricted" in result.stderr
