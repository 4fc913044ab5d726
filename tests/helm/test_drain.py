"""The chart on two real nodes: draining the node of one replica respects the PDB, and pod
creations at a steady rate go on with the sidecar throughout."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from bench.localcluster.chartinstall import ChartRelease, WebhookImage
from bench.localcluster.node.cluster import NodeCluster
from tests.helm.conftest import start
from tests.helm.support import injector_pods, is_ready, running, scenario, traced_namespace, wait_settled
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def release(image: WebhookImage) -> Iterator[ChartRelease]:
    yield from start(image, nodes=2)


def _evict(cluster: NodeCluster, pod: str) -> tuple[int, str]:
    """POST an Eviction for ``pod`` (what kubectl drain does); (HTTP status, message)."""
    body = json.dumps(
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "otel-injector"}}
    )
    result = cluster.kubectl(
        "create", "--raw", f"/api/v1/namespaces/otel-injector/pods/{pod}/eviction", "-f", "-", input=body, check=False
    )
    if result.returncode == 0:
        return 201, result.stdout
    code = 429 if "disruption budget" in result.stderr or "TooManyRequests" in result.stderr else 0
    return code, result.stderr.strip()


def test_drain_respects_the_pdb(release: ChartRelease) -> None:
    cluster = release.cluster
    pods = wait_settled(release)
    nodes = {p["spec"]["nodeName"] for p in pods}
    # The chart's preferred anti-affinity spreads the two replicas over the two nodes.
    assert nodes == {"node-1", "node-2"}, nodes
    wait_for(
        "the PDB allows one disruption",
        lambda: (
            json.loads(cluster.kubectl("get", "pdb", "otel-injector", "-n", "otel-injector", "-o", "json").stdout)[
                "status"
            ].get("disruptionsAllowed")
            == 1
        ),
        timeout=30,
    )
    drained = "node-2"
    other = next(p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] != drained)
    namespace = traced_namespace(cluster, "drain")
    ready_counts: list[int] = []
    refused: list[tuple[int, str]] = []
    stop = threading.Event()

    sample_errors: list[str] = []

    def sample() -> None:
        while not stop.is_set():
            try:
                ready_counts.append(sum(1 for p in injector_pods(release) if is_ready(p)))
            except Exception as err:  # reported by the assertion below, not lost in a thread
                sample_errors.append(f"{type(err).__name__}: {err}")
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    with scenario(cluster, namespace, "drain (2 nodes)") as run, running(sampler, stop):
        argv = [
            str(cluster.binaries.kubectl),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "drain",
            drained,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=180s",
        ]
        drain = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # While the evicted replica's replacement is not Ready yet, the PDB must refuse
        # to evict the other one.
        wait_for(
            "the replica on the drained node terminating",
            lambda: any(
                # .get: the evicted replica's replacement is listed before it is scheduled.
                p["spec"].get("nodeName") == drained and p["metadata"].get("deletionTimestamp")
                for p in injector_pods(release)
            ),
            timeout=60,
            interval=0.2,
        )
        refused.append(_evict(cluster, other))
        output, _ = drain.communicate(timeout=200)
        after = wait_settled(release, timeout=180)
    print(output)
    assert drain.returncode == 0, output
    assert refused[0][0] == 429, refused
    assert sample_errors == [], sample_errors
    assert min(ready_counts) >= 1, ready_counts
    assert {p["spec"].get("nodeName") for p in after} == {"node-1"}
    assert run.failed() == [], run.summary()
    assert run.without_sidecar() == [], run.summary()
    cluster.kubectl("uncordon", drained)
