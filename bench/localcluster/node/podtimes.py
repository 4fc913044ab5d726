"""Pod start times on the real node, with and without the sidecar (a benchmark, not a test).

    python -m bench.localcluster.node.podtimes [--pods 5]

Starts a node-enabled cluster with the injector, then creates ``--pods`` pods of the demo
app one after the other in a traced namespace (native sidecar) and as many in an untraced
one, and measures for each the wall time from ``kubectl create`` returning to the pod's
Ready condition, polled every 50 ms. Prints every sample and the medians. Figures from the
shared 2-core machine are noisy: compare the medians, not single pods.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench.localcluster.injector import install, wait_for
from bench.localcluster.node.cluster import NodeCluster

POLL_SECONDS = 0.05


def _pod(name: str, namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": ["serve"],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }


def _ready(cluster: NodeCluster, namespace: str, name: str) -> bool:
    out = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if out.returncode != 0:
        return False
    conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def measure(cluster: NodeCluster, namespace: str, count: int, prefix: str = "start") -> list[float]:
    """Seconds from creation to Ready for ``count`` pods created one at a time."""
    samples: list[float] = []
    for index in range(count):
        name = f"{prefix}-{index}"
        cluster.kubectl("create", "-f", "-", input=json.dumps(_pod(name, namespace, cluster.images.demo_app.name)))
        started = time.monotonic()
        while not _ready(cluster, namespace, name):
            if time.monotonic() - started > 120:
                raise RuntimeError(f"pod {namespace}/{name} not Ready in 120 s")
            time.sleep(POLL_SECONDS)
        samples.append(time.monotonic() - started)
        cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=false")
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.localcluster.node.podtimes", description=__doc__)
    parser.add_argument("--pods", type=int, default=5, help="pods per variant (default 5)")
    args = parser.parse_args(argv)
    with NodeCluster(log=lambda m: None) as cluster:
        install(cluster, log=lambda m: None)
        for namespace, traced in (("with-sidecar", True), ("without-sidecar", False)):
            cluster.kubectl("create", "namespace", namespace)
            if traced:
                cluster.kubectl("label", "namespace", namespace, "tracing=enabled")
        wait_for(
            "the collector config copy",
            lambda: (
                cluster.kubectl("get", "cm", "otel-collector-sidecar", "-n", "with-sidecar", check=False).returncode
                == 0
            ),
            30,
        )
        # One pod each first, so neither variant pays for a cold page cache alone.
        measure(cluster, "with-sidecar", 1, "warm")
        measure(cluster, "without-sidecar", 1, "warm")
        results = {ns: measure(cluster, ns, args.pods) for ns in ("with-sidecar", "without-sidecar")}
    for namespace, samples in results.items():
        shown = ", ".join(f"{s:.2f}" for s in samples)
        print(f"{namespace:16} median {statistics.median(samples):.2f} s  (n={len(samples)}: {shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
