"""Helpers of the operations tests: traced namespaces, a scenario under steady load, the
injector's pods, and killing a container from its node."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.localcluster.chartinstall import ChartRelease
from bench.localcluster.node.cluster import NodeCluster
from bench.localcluster.podload import Creation, Figures, PodLoad, delete_pods, figures, webhook_histogram
from tests.support import wait_for

#: Pod creations per second during every scenario.
RATE = 10.0
#: Rows of the operations table, in the order the scenarios ran.
ROWS: list[Figures] = []
INJECTOR_SELECTOR = "app.kubernetes.io/name=otel-injector"


def traced_namespace(cluster: NodeCluster, prefix: str = "ops") -> str:
    """A new namespace labelled tracing=enabled, once its default ServiceAccount and the
    collector ConfigMap copy exist (pods need both)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "tracing=enabled")
    for kind, obj in (("serviceaccount", "default"), ("configmap", "otel-collector-sidecar")):

        def exists(kind: str = kind, obj: str = obj) -> bool:
            return cluster.kubectl("get", kind, obj, "-n", name, check=False).returncode == 0

        wait_for(f"{kind}/{obj} in {name}", exists, timeout=30)
    return name


@dataclass
class Scenario:
    """What one scenario measured: the creations, and the apiserver log lines about
    failing open, which say why a pod went without the sidecar."""

    name: str
    creations: list[Creation] = field(default_factory=list)
    fail_open_lines: list[str] = field(default_factory=list)
    row: Figures | None = None

    def without_sidecar(self) -> list[Creation]:
        return [c for c in self.creations if c.created and not c.sidecar]

    def failed(self) -> list[Creation]:
        return [c for c in self.creations if not c.created]

    def summary(self) -> str:
        lines = [f"{self.row}"] if self.row else []
        lines += [f"  {c.name}: status {c.status} {c.error[:200]}" for c in self.failed()[:10]]
        lines += [f"  {c.name}: no sidecar" for c in self.without_sidecar()[:10]]
        lines += self.fail_open_lines[:10]
        return "\n".join(lines)


def _apiserver_log_size(cluster: NodeCluster) -> int:
    try:
        return (cluster.workdir / "kube-apiserver.log").stat().st_size
    except OSError:
        return 0


def _fail_open_lines(cluster: NodeCluster, offset: int) -> list[str]:
    try:
        with (cluster.workdir / "kube-apiserver.log").open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return [line[:400] for line in text.splitlines() if "otel-injector.io" in line and "ailing open" in line]


@contextmanager
def scenario(
    cluster: NodeCluster,
    namespace: str,
    name: str,
    *,
    settle: float = 3.0,
    notes: Callable[[Scenario], str] = lambda s: "",
    down: Callable[[list[Creation]], list[Creation]] = lambda cs: [],
) -> Iterator[Scenario]:
    """Run the block under a steady pod load in ``namespace``; the load goes on
    ``settle`` seconds after it. Adds the row to the table and deletes the pods."""
    result = Scenario(name)
    before = webhook_histogram(cluster)
    offset = _apiserver_log_size(cluster)
    started = time.monotonic()
    prefix = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    load = PodLoad(cluster, namespace, cluster.images.demo_app.name, rate=RATE, prefix=prefix)
    try:
        with load:
            yield result
            time.sleep(settle)
    finally:
        result.creations = load.creations
        result.fail_open_lines = _fail_open_lines(cluster, offset)
        reading = webhook_histogram(cluster).minus(before)
        result.row = figures(
            name,
            load.creations,
            reading,
            seconds=time.monotonic() - started,
            notes=notes(result),
            down=down(load.creations),
        )
        ROWS.append(result.row)
        print(result.summary(), flush=True)
        delete_pods(cluster, namespace)


def injector_pods(release: ChartRelease) -> list[dict[str, Any]]:
    return release.pods()


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def wait_settled(release: ChartRelease, replicas: int = 2, timeout: float = 120) -> list[dict[str, Any]]:
    """Until exactly ``replicas`` injector pods exist, all Ready, none terminating."""

    def settled() -> list[dict[str, Any]] | None:
        pods = injector_pods(release)
        if len(pods) == replicas and all(is_ready(p) for p in pods):
            return pods
        return None

    result: list[dict[str, Any]] = wait_for("the injector's pods settled", settled, timeout=timeout, interval=0.5)
    return result


def kill_container(cluster: NodeCluster, pod: dict[str, Any], container: str = "webhook") -> None:
    """SIGKILL the container's process from its node (``ctr task kill -s SIGKILL``)."""
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    container_id = status["containerID"].split("://", 1)[1]
    node = next(n for n in cluster.nodes if n.name == pod["spec"]["nodeName"])
    argv = cluster.namespaces.argv(
        [
            str(cluster.binaries.path("ctr")),
            "--address",
            str(node.containerd.socket),
            "--namespace",
            "k8s.io",
            "tasks",
            "kill",
            "--signal",
            "SIGKILL",
            container_id,
        ]
    )
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


def stale_report(cluster: NodeCluster, namespace: str) -> tuple[int, dict[str, Any]]:
    """``otel-injector stale -n NS -o json`` as a user runs it (the admin kubeconfig)."""
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "webhook", "stale", "-n", namespace, "-o", "json"],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        return result.returncode, json.loads(result.stdout or "{}")
    except ValueError as exc:
        raise AssertionError(f"stale printed no JSON ({result.returncode}): {result.stdout}{result.stderr}") from exc


@contextmanager
def running(thread: threading.Thread, stop: threading.Event, join_timeout: float = 5.0) -> Iterator[None]:
    """Run ``thread`` (a poller that returns once ``stop`` is set) for the block; stop and
    join it however the block ends, so a failed wait cannot leave it polling a cluster that
    is being torn down."""
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(join_timeout)
