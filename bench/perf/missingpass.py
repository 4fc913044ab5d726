"""What the leader's pass over pods costs (webhook/cluster/missing.py): the memory of its
informer view for N pods, the CPU of trimming each pod as it arrives, and the CPU of one
pass. Prints a table; nothing is asserted.

    python -m bench.perf.missingpass [--pods 1000,10000,50000] [--missing-percent 10]

The pods are the bench's typical pod (bench/perf/pods.py, about 10 KB of JSON as the
apiserver sends it), one Deployment per 10 pods over 100 namespaces, each decoded from its
own bytes as the informer gets it. ``--missing-percent`` of them run without the sidecar;
the others were injected with an older collector config, so every pod is examined by both
rules and every workload has an owner (the worst case for a pass; owners come from a
warm cache, as in steady state). Memory is what :mod:`tracemalloc` sees allocated by the
cache (the trimmed pods) and by the verdicts the first pass keeps, next to what the
untrimmed pods would take. CPU is ``time.process_time`` of the first pass (every verdict
computed) and the median of the next five (pods unchanged: verdicts reused).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from collections.abc import Mapping
from typing import Any

import orjson
from kubernetes import client

from bench.perf.pods import typical_pod
from webhook.cluster.client import Kube
from webhook.cluster.informer import Informer
from webhook.cluster.missing import SidecarWatch
from webhook.cluster.owners import Owner, Owners
from webhook.cluster.paths import api_path
from webhook.cluster.podview import slim_pod_for_rules
from webhook.cluster.restarts import Restarter
from webhook.core.injection import inject_pod
from webhook.core.restartbudget import RestartBudget
from webhook.core.settings import InjectionSettings
from webhook.core.workload import infer_workload
from webhook.telemetry.repairmetrics import RepairMetrics

NAMESPACES = 100
PODS_PER_WORKLOAD = 10


class WarmOwners(Owners):
    """Owners as a warm cache has them: no API call."""

    def cached_of_pod(self, pod: Mapping[str, Any]) -> Owner | None:
        metadata = pod.get("metadata") or {}
        workload = infer_workload(pod)
        kind, name = (workload.kind, workload.name) if workload else ("Pod", str(metadata.get("name")))
        return Owner(str(metadata.get("namespace")), kind, name, "uid", "apps/v1")


def pod_bytes(count: int, missing_percent: int) -> list[bytes]:
    """``count`` pods as the apiserver would send them."""
    old = InjectionSettings(config_hash="old")
    base = typical_pod()
    injected = dict(inject_pod(base, old, namespace="ns-0").pod)
    out = []
    for i in range(count):
        workload = i // PODS_PER_WORKLOAD
        template = base if (i * 100 // max(count, 1)) % 100 < missing_percent else injected
        pod = orjson.loads(orjson.dumps(template))
        metadata = pod["metadata"]
        rs = f"app-{workload}-5d9c7b"
        metadata.update(
            name=f"{rs}-{i:06d}",
            namespace=f"ns-{workload % NAMESPACES}",
            uid=f"00000000-0000-4000-8000-{i:012d}",
            resourceVersion=str(1000 + i),
            ownerReferences=[
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "rs", "controller": True}
            ],
        )
        metadata.setdefault("labels", {})["pod-template-hash"] = "5d9c7b"
        pod["status"] = {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
        out.append(orjson.dumps(pod))
    return out


def measure(count: int, missing_percent: int) -> dict[str, float]:
    raws = pod_bytes(count, missing_percent)
    sample = raws[: min(count, 2000)]  # untrimmed pods: a sample, scaled (their total is huge)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    full = [orjson.loads(r) for r in sample]
    full_bytes = (tracemalloc.get_traced_memory()[0] - before) / len(sample) * count
    del full
    before = tracemalloc.get_traced_memory()[0]
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in raws:
        slim = slim_pod_for_rules(orjson.loads(raw))
        cache[(slim["metadata"]["namespace"], slim["metadata"]["name"])] = slim
    slim_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    decoded = [orjson.loads(r) for r in sample]
    started = time.process_time()
    for pod in decoded:
        slim_pod_for_rules(pod)
    transform_cpu = (time.process_time() - started) / len(sample) * count
    del decoded

    unused = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    namespaces = Informer(unused, api_path("v1", "namespaces"), name="namespaces", on_change=lambda o, n: None)
    namespaces._cache = {
        ("", f"ns-{i}"): {"metadata": {"name": f"ns-{i}", "labels": {"tracing": "enabled"}}} for i in range(NAMESPACES)
    }
    namespaces.synced.set()
    owners = WarmOwners(unused, ttl=300, clock=time.monotonic)
    metrics = RepairMetrics()
    budget = RestartBudget(max_per_minute=2, cooldown=600, cooldown_max=86400, clock=time.monotonic)
    restarter = Restarter(unused, owners, budget, metrics, is_leader=lambda: True, rollout_wait=0)
    current = InjectionSettings(config_hash="new")
    watch = SidecarWatch(
        unused,
        namespaces=namespaces,
        injection=lambda: current,
        restarter=restarter,
        owners=owners,
        metrics=metrics,
        is_leader=lambda: True,
        repair=True,
        pass_seconds=30,
    )
    watch.pods._cache = cache
    watch.pods.synced.set()
    # Steady state: the Events of the first pass are recorded (here: refused at once by a
    # closed loopback port), so later passes only compare counts.
    watch._event = lambda owner, detail, rollable: None  # type: ignore[method-assign,misc]
    tracemalloc.start()
    watch.run_pass()
    memo_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    watch._memo = {}
    started = time.process_time()
    watch.run_pass()  # every verdict computed again, without tracemalloc's overhead
    cold = time.process_time() - started
    passes = []
    for _ in range(5):
        started = time.process_time()
        result = watch.run_pass()
        passes.append(time.process_time() - started)
    assert result is not None
    return {
        "pods": count,
        "missing": sum(len(w.pods) for w in result.missing),
        "full_mib": full_bytes / 2**20,
        "slim_mib": slim_bytes / 2**20,
        "slim_bytes_per_pod": slim_bytes / count,
        "transform_us": transform_cpu / count * 1e6,
        "memo_mib": memo_bytes / 2**20,
        "cold_ms": cold * 1e3,
        "pass_ms": statistics.median(passes) * 1e3,
        "pass_us_per_pod": statistics.median(passes) / count * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", default="1000,10000,50000", help="comma-separated pod counts")
    parser.add_argument("--missing-percent", type=int, default=10)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    print(
        "| pods | missing | informer view | + verdicts | untrimmed pods | trim per pod | first pass | "
        "next passes | per pod |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in (int(c) for c in args.pods.split(",")):
        row = measure(count, args.missing_percent)
        print(
            f"| {row['pods']:,.0f} | {row['missing']:,.0f} | {row['slim_mib']:.1f} MiB "
            f"({row['slim_bytes_per_pod']:,.0f} B/pod) | {row['memo_mib']:.1f} MiB | {row['full_mib']:.0f} MiB | "
            f"{row['transform_us']:.0f} µs | {row['cold_ms']:.0f} ms | {row['pass_ms']:.0f} ms | "
            f"{row['pass_us_per_pod']:.1f} µs |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
