"""Pods left without the sidecar, and ``auto-restart``, on a real control plane (etcd,
kube-apiserver, kube-controller-manager; no kubelet, so pods stay Pending, which is all
admission, ``stale`` and a rollout need).

The outage is real: the webhook is registered with ``failurePolicy: Ignore`` at an address
where nothing listens yet, so the apiserver's call fails and the pods are created as they
are. Then a real ``otel-injector serve`` comes up: first without repair (the pods are
listed by ``stale --missing``, counted by the gauge, reported by an Event), then with
repair on (the Deployment is rolled, and its new pod has the sidecar; the bare pod is only
reported). Last, a collector config change rolls only the Deployment that opted in with
``otel-injector.io/auto-restart``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane, ManagedProcess, free_port
from tests.cluster.support import (
    Tls,
    delete_namespaces,
    make_namespace,
    mwc_path,
    put_source,
    serve,
    unique,
    webhook_configuration,
)
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
    tls: Tls
    injector_ns: str
    namespace_label: str
    mwc: str
    namespaces: list[str] = field(default_factory=list)
    process: ManagedProcess | None = None
    port: int = 0

    def start(self, name: str, **env: str) -> None:
        """(Re)start the webhook and point the registration at it."""
        self.stop()
        self.process, self.port = serve(
            self.cluster,
            name,
            tls_cert=self.tls.cert,
            tls_key=self.tls.key,
            context=self.tls.context,
            env={
                "OTEL_INJECTOR_RECONCILE": "true",
                "OTEL_INJECTOR_NAMESPACE": self.injector_ns,
                "OTEL_INJECTOR_COLLECTOR_SOURCE": SOURCE,
                "OTEL_INJECTOR_MISSING_PASS_SECONDS": "0.5",
                "OTEL_INJECTOR_ROLLOUT_WAIT_SECONDS": "1",
                **env,
            },
        )
        self.point_at(self.port)

    def point_at(self, port: int) -> None:
        mwc = self.kube.get(mwc_path(self.mwc))
        for hook in mwc["webhooks"]:
            hook["clientConfig"]["url"] = f"https://127.0.0.1:{port}/mutate"
        self.kube.replace(mwc_path(self.mwc), mwc)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def metric(self, name: str, labels: dict[str, str]) -> float | None:
        context = self.tls.context()
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/metrics", context=context, timeout=5) as answer:
            text = answer.read().decode()
        wanted = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        for line in text.splitlines():
            if line.startswith(name + wanted + " "):
                return float(line.split()[-1])
        return None


@pytest.fixture(scope="module")
def bench(cluster: ControlPlane, kube: Kube, loopback_tls: Tls) -> Iterator[Bench]:
    injector_ns = make_namespace(kube, unique("inj-missing"))
    put_source(kube, injector_ns, SOURCE, "version: 1\n")
    label = unique("e2e-missing")
    mwc = unique("otel-injector-missing")
    body = webhook_configuration(
        mwc, f"https://127.0.0.1:{free_port()}/mutate", ca_bundle=loopback_tls.ca_bundle, namespace_label=label
    )
    for hook in body["webhooks"]:
        hook["failurePolicy"] = "Ignore"  # as the chart registers it: an outage admits pods as they are
    kube.create(mwc_path(""), body)
    bench = Bench(cluster, kube, loopback_tls, injector_ns, label, mwc)
    try:
        yield bench
    finally:
        bench.stop()
        kube.delete(mwc_path(mwc))
        delete_namespaces(kube, injector_ns, *bench.namespaces)


def deployment(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }


def pods_of(kube: Kube, namespace: str, app: str) -> list[dict[str, Any]]:
    return kube.list(api_path("v1", "pods", namespace), label_selector=f"app={app}")[0]


def status_of(pod: dict[str, Any]) -> dict[str, Any] | None:
    raw = (pod["metadata"].get("annotations") or {}).get(names.STATUS_ANNOTATION)
    return None if raw is None else dict(json.loads(raw))


def restarted_at(kube: Kube, namespace: str, name: str) -> str | None:
    obj = kube.get(api_path("apps/v1", "deployments", namespace, name))
    return (obj["spec"]["template"]["metadata"].get("annotations") or {}).get(RESTARTED_AT)


def stale_missing(bench: Bench, namespace: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "webhook", "stale", "--missing", "-n", namespace, "-o", "json"]
    argv += ["--kubeconfig", str(bench.cluster.kubeconfig)]
    env = {**os.environ, "OTEL_INJECTOR_NAMESPACE": bench.injector_ns}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def events_on(kube: Kube, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.kind={kind},involvedObject.name={name},reason=SidecarMissing"
    return kube.list(api_path("v1", "events", namespace), field_selector=selector)[0]


def test_pods_created_while_the_webhook_is_down_are_found_and_repaired(bench: Bench) -> None:
    kube = bench.kube
    ns = make_namespace(kube, unique("outage"), {bench.namespace_label: "true", "tracing": "enabled"})
    bench.namespaces.append(ns)
    # The webhook is down: the apiserver cannot reach it and, failurePolicy Ignore, admits.
    kube.create(api_path("apps/v1", "deployments", ns), deployment("web"))
    kube.create(
        api_path("v1", "pods", ns),
        {
            "metadata": {"name": "bare", "labels": {"app": "bare"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    (first,) = wait_for("the Deployment's pod", lambda: pods_of(kube, ns, "web"), timeout=30)
    assert status_of(first) is None, "the pod was injected: the outage did not happen"
    deployment_uid = kube.get(api_path("apps/v1", "deployments", ns, "web"))["metadata"]["uid"]

    # 1. stale --missing lists both, grouped by workload, with the rules' reason.
    listed = stale_missing(bench, ns)
    assert listed.returncode == 3, listed.stdout + listed.stderr
    report = json.loads(listed.stdout)
    assert report["missingPods"] == 2
    groups = {(w["kind"], w["name"]): w for w in report["workloads"]}
    assert set(groups) == {("Deployment", "web"), ("Pod", "bare")}
    assert groups["Deployment", "web"]["pods"] == [
        {
            "name": first["metadata"]["name"],
            "reasons": ["no otel-collector sidecar, but the rules inject it (namespace labelled tracing=enabled)"],
        }
    ]
    assert groups["Pod", "bare"]["restartable"] is False

    # 2. The webhook is back, repair off: counted and reported, nothing rolled.
    bench.start("serve-missing-detect")
    wait_for(
        "the gauge",
        lambda: bench.metric("otel_injector_pods_missing_sidecar", {"namespace": ns}) == 2,
        timeout=30,
    )
    (event,) = wait_for("a SidecarMissing Event on the Deployment", lambda: events_on(kube, ns, "Deployment", "web"))
    assert event["involvedObject"]["uid"] == deployment_uid
    assert event["type"] == "Warning"
    assert "repair.missingSidecars.enabled" in event["message"]
    (bare_event,) = wait_for("a SidecarMissing Event on the bare pod", lambda: events_on(kube, ns, "Pod", "bare"))
    assert "never restarted" in bare_event["message"]
    assert restarted_at(kube, ns, "web") is None

    # 3. Repair on: the Deployment is rolled, its new pod has the sidecar; the bare pod stays.
    bench.start("serve-missing-repair", OTEL_INJECTOR_REPAIR_MISSING_SIDECARS="true")
    wait_for("the rollout", lambda: restarted_at(kube, ns, "web"), timeout=30)
    new = wait_for(
        "an injected pod of the rolled Deployment",
        lambda: [p for p in pods_of(kube, ns, "web") if status_of(p)],
        timeout=30,
    )
    assert any(c["name"] == names.CONTAINER_NAME for c in new[0]["spec"].get("initContainers") or [])
    restarts = {"reason": "missing-sidecar", "kind": "Deployment"}
    assert bench.metric("otel_injector_workload_restarts_total", restarts) == 1
    assert status_of(kube.get(api_path("v1", "pods", ns, "bare"))) is None
    # The old pod remains (no kubelet makes the new one Ready): still missing, so still
    # wanted, and the cool-down holds the Deployment: no second rollout.
    stamp = restarted_at(kube, ns, "web")
    wait_for(
        "the cool-down to hold a wanted rollout",
        lambda: bench.metric("otel_injector_workload_restarts_deferred_total", {"reason": "cooling-down"}),
        timeout=10,
    )
    assert restarted_at(kube, ns, "web") == stamp
    assert bench.metric("otel_injector_workload_restarts_total", restarts) == 1


def test_auto_restart_rolls_only_the_workload_that_asked(bench: Bench) -> None:
    kube = bench.kube
    if bench.process is None:
        bench.start("serve-auto-restart")
    ns = make_namespace(kube, unique("auto"), {bench.namespace_label: "true", "tracing": "enabled"})
    bench.namespaces.append(ns)
    v1 = config_hash(b"version: 1\n")
    wait_for("the copy of v1", lambda: copy_hash(kube, ns) == v1, timeout=15)
    kube.create(api_path("apps/v1", "deployments", ns), deployment("opted", {names.AUTO_RESTART_ANNOTATION: "true"}))
    kube.create(api_path("apps/v1", "deployments", ns), deployment("plain"))
    for app in ("opted", "plain"):
        (pod,) = wait_for(f"the injected pod of {app}", lambda: pods_of(kube, ns, app), timeout=30)  # noqa: B023
        assert (status_of(pod) or {}).get("configHash") == v1

    put_source(kube, bench.injector_ns, SOURCE, "version: 2\n")
    v2 = config_hash(b"version: 2\n")
    wait_for("the copy of v2", lambda: copy_hash(kube, ns) == v2, timeout=15)
    wait_for("the opted-in rollout", lambda: restarted_at(kube, ns, "opted"), timeout=30)
    fresh = wait_for(
        "a pod of opted with the new config",
        lambda: [p for p in pods_of(kube, ns, "opted") if (status_of(p) or {}).get("configHash") == v2],
        timeout=30,
    )
    assert fresh
    outdated = {"reason": "config-outdated", "kind": "Deployment"}
    assert bench.metric("otel_injector_workload_restarts_total", outdated) == 1
    # Several more passes (every 0.5 s): the Deployment without the annotation is never rolled.
    time.sleep(3)
    assert restarted_at(kube, ns, "plain") is None
    assert bench.metric("otel_injector_workload_restarts_total", outdated) == 1


def copy_hash(kube: Kube, namespace: str) -> str | None:
    cm = kube.get_or_none(configmap_path(namespace, names.CONFIGMAP_NAME))
    return None if cm is None else str(cm["metadata"]["annotations"].get(HASH_ANNOTATION))
