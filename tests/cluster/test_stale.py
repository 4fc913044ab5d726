"""``otel-injector stale`` against pods the real apiserver had injected by a real ``serve``
process, before and after a change of the source collector config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import Tls, make_namespace, put_source, reconciling_webhook, unique
from tests.support import wait_for
from webhook.cluster.client import Kube
from webhook.cluster.copies import HASH_ANNOTATION
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.stale import RESTARTED_AT
from webhook.core import names
from webhook.core.settings import config_hash

pytestmark = pytest.mark.e2e

SOURCE = "collector-source"


@dataclass
class Bench:
    cluster: ControlPlane
    kube: Kube
    injector_ns: str
    app_ns: str


@pytest.fixture(scope="module")
def bench(cluster: ControlPlane, kube: Kube, loopback_tls: Tls) -> Iterator[Bench]:
    with reconciling_webhook(cluster, kube, loopback_tls, "stale", source=SOURCE, config="version: 1\n") as hook:
        app_ns = make_namespace(kube, unique("shop"), {hook.namespace_label: "true", "tracing": "enabled"})
        hook.namespaces.append(app_ns)
        # The copy carries the hash the process injects with: wait until it knows v1.
        wait_for("the copy of v1", lambda: copy_hash(kube, app_ns) == config_hash(b"version: 1\n"), timeout=10)
        yield Bench(cluster, kube, hook.namespace, app_ns)


def copy_hash(kube: Kube, namespace: str) -> str | None:
    cm = kube.get_or_none(configmap_path(namespace, names.CONFIGMAP_NAME))
    return None if cm is None else str(cm["metadata"]["annotations"].get(HASH_ANNOTATION))


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }


def injected_pods(kube: Kube, namespace: str, app: str, count: int, config: str) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods, _ = kube.list(api_path("v1", "pods", namespace), label_selector=f"app={app}")
        if len(pods) < count:
            return None
        hashes = {json.loads(p["metadata"]["annotations"][names.STATUS_ANNOTATION])["configHash"] for p in pods}
        assert hashes == {config_hash(config.encode())}
        return pods

    return wait_for(f"{count} injected pods of {app}", ready, timeout=30)


def stale(bench: Bench, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OTEL_INJECTOR_NAMESPACE": bench.injector_ns,
        "OTEL_INJECTOR_COLLECTOR_SOURCE": SOURCE,
        "KUBECONFIG": "/nonexistent",  # --kubeconfig must be what is used
    }
    argv = [sys.executable, "-m", "webhook", "stale", "--kubeconfig", str(bench.cluster.kubeconfig), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_stale_lists_pods_injected_before_a_config_change_and_restarts_on_request(bench: Bench) -> None:
    kube, ns = bench.kube, bench.app_ns
    kube.create(api_path("apps/v1", "deployments", ns), deployment("web", ns, 2))
    injected_pods(kube, ns, "web", 2, "version: 1\n")
    bare = kube.create(
        api_path("v1", "pods", ns),
        {
            "metadata": {"name": "bare", "labels": {"app": "bare"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    assert names.STATUS_ANNOTATION in bare["metadata"]["annotations"]

    nothing = stale(bench, "-n", ns)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.startswith("no stale pods")

    put_source(kube, bench.injector_ns, SOURCE, "version: 2\n")
    new = config_hash(b"version: 2\n")
    wait_for("the copy of v2", lambda: copy_hash(kube, ns) == new, timeout=10)
    # Injected after the change: current, not listed.
    kube.create(api_path("apps/v1", "deployments", ns), deployment("fresh", ns, 1))
    injected_pods(kube, ns, "fresh", 1, "version: 2\n")

    listed = stale(bench, "-n", ns, "-o", "json")
    assert listed.returncode == 3, listed.stderr
    report = json.loads(listed.stdout)
    assert report["configHash"] == new
    assert report["stalePods"] == 3
    groups = {(w["kind"], w["name"]): w for w in report["workloads"]}
    assert set(groups) == {("Deployment", "web"), ("Pod", "bare")}
    assert len(groups["Deployment", "web"]["pods"]) == 2
    old = config_hash(b"version: 1\n")
    assert groups["Deployment", "web"]["pods"][0]["reasons"] == [f"collector config {old}, current is {new}"]
    assert groups["Pod", "bare"]["restartable"] is False

    text = stale(bench, "-n", ns)
    assert text.returncode == 3
    assert f"Deployment {ns}/web: 2 stale pod(s); roll it with --restart" in text.stdout
    assert "bare pod: cannot be restarted" in text.stdout

    # Listing changed nothing; --restart rolls the Deployment (only the stale one).
    web = kube.get(api_path("apps/v1", "deployments", ns, "web"))
    assert RESTARTED_AT not in (web["spec"]["template"]["metadata"].get("annotations") or {})
    restarted = stale(bench, "-n", ns, "--restart")
    assert restarted.returncode == 3, restarted.stdout + restarted.stderr  # the bare pod remains
    assert f"Deployment {ns}/web: 2 stale pod(s); restarted" in restarted.stdout
    web = kube.get(api_path("apps/v1", "deployments", ns, "web"))
    assert RESTARTED_AT in web["spec"]["template"]["metadata"]["annotations"]
    fresh = kube.get(api_path("apps/v1", "deployments", ns, "fresh"))
    assert RESTARTED_AT not in (fresh["spec"]["template"]["metadata"].get("annotations") or {})
    # The rollout's new pods are injected with the current config.
    new_pods = wait_for(
        "a pod of the restarted Deployment",
        lambda: [
            p
            for p in kube.list(api_path("v1", "pods", ns), label_selector="app=web")[0]
            if json.loads(p["metadata"]["annotations"][names.STATUS_ANNOTATION])["configHash"] == new
        ],
        timeout=30,
    )
    assert new_pods


def test_stale_compares_the_sidecar_image(bench: Bench) -> None:
    listed = stale(bench, "-n", bench.app_ns, "--image", "registry.example/collector:9", "-o", "json")
    assert listed.returncode == 3, listed.stderr
    reasons = [r for w in json.loads(listed.stdout)["workloads"] for p in w["pods"] for r in p["reasons"]]
    assert reasons
    assert any("current is registry.example/collector:9" in r for r in reasons)


def test_stale_reports_api_errors_with_exit_1(bench: Bench, tmp_path: Any) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text(bench.cluster.kubeconfig.read_text().replace(bench.cluster.server_url, "https://127.0.0.1:9"))
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "stale", "--kubeconfig", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("otel-injector: ")
    assert "Traceback" not in done.stderr
