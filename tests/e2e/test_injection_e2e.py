"""The injector on a real kube-apiserver: selectors, native sidecars, PodSecurity,
dry-run, fail-open, reinvocation, and the collector config a pod mounts."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.localcluster.controlplane import ControlPlane
from bench.localcluster.injector import LocalInjector, wait_for
from tests.e2e.conftest import get_json, sidecar_names, wait_for_pods
from webhook.core import names

pytestmark = pytest.mark.e2e

Namespace = Callable[..., str]


def deployment(name: str, namespace: str, *, pod_labels: dict[str, str] | None = None) -> str:
    labels = {"app": name, **(pod_labels or {})}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "registry.example/app:1", "env": [{"name": "KEEP", "value": "me"}]}
                        ]
                    },
                },
            },
        }
    )


def pod_manifest(name: str, namespace: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}], **spec},
    }


def apply(cp: ControlPlane, obj: dict[str, Any] | str, *extra: str) -> subprocess.CompletedProcess[str]:
    text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
    return cp.kubectl("apply", "-f", "-", *extra, input=text)


def test_labelled_namespace_deployment_gets_sidecar_volume_env_and_configmap(
    control_plane: ControlPlane, namespace: Namespace
) -> None:
    ns = namespace(traced=True)
    apply(control_plane, deployment("web", ns))
    (pod,) = wait_for_pods(control_plane, ns, "app=web")
    init = pod["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["otel-collector"]
    assert init[0]["restartPolicy"] == "Always"
    assert init[0]["args"] == ["--config=/etc/otelcol/config.yaml"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == names.VOLUME_NAME)
    assert volume["configMap"]["name"] == names.CONFIGMAP_NAME
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["KEEP"]["value"] == "me"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://localhost:4318"
    assert env["OTEL_SERVICE_NAME"]["value"] == "web"
    assert "k8s.deployment.name=web" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    assert json.loads(pod["metadata"]["annotations"][names.STATUS_ANNOTATION])["mode"] == "native"
    # Without the ConfigMap in this namespace the pod would hang in ContainerCreating.
    configmap = wait_for(
        "the sidecar ConfigMap",
        lambda: (
            control_plane.kubectl("get", "configmap", names.CONFIGMAP_NAME, "-n", ns, "-o", "json", check=False).stdout
        ),
        timeout=30,
    )
    assert names.CONFIG_KEY in json.loads(configmap)["data"]


def test_unlabelled_namespace_and_pod_level_labels(control_plane: ControlPlane, namespace: Namespace) -> None:
    plain = namespace(traced=False)
    apply(control_plane, pod_manifest("untouched", plain))
    apply(control_plane, pod_manifest("opted-in", plain, {"tracing": "enabled"}))
    traced = namespace(traced=True)
    apply(control_plane, pod_manifest("opted-out", traced, {"tracing": "disabled"}))
    assert sidecar_names(get_json(control_plane, "pod", "untouched", "-n", plain)) == []
    assert sidecar_names(get_json(control_plane, "pod", "opted-in", "-n", plain)) == ["otel-collector"]
    assert sidecar_names(get_json(control_plane, "pod", "opted-out", "-n", traced)) == []


def test_job_pod_gets_a_native_sidecar(control_plane: ControlPlane, namespace: Namespace) -> None:
    ns = namespace(traced=True)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "report", "namespace": ns},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "report", "image": "registry.example/report:1"}],
                }
            }
        },
    }
    apply(control_plane, job)
    (pod,) = wait_for_pods(control_plane, ns, "batch.kubernetes.io/job-name=report")
    sidecar = pod["spec"]["initContainers"][0]
    assert sidecar["name"] == "otel-collector"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["port"] == names.HEALTH_PORT
    assert pod["spec"]["restartPolicy"] == "Never"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert "k8s.job.name=report" in env["OTEL_RESOURCE_ATTRIBUTES"]


RESTRICTED_APP = {
    "name": "app",
    "image": "registry.example/app:1",
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def test_pod_security_restricted_admits_the_injected_pod(control_plane: ControlPlane, namespace: Namespace) -> None:
    ns = namespace(traced=True, labels={"pod-security.kubernetes.io/enforce": "restricted"})
    pod = pod_manifest("secure", ns)
    pod["spec"]["containers"] = [RESTRICTED_APP]
    apply(control_plane, pod)
    assert sidecar_names(get_json(control_plane, "pod", "secure", "-n", ns)) == ["otel-collector"]
    # Control: enforcement is really on, so the admission above proves compliance.
    rejected = control_plane.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(pod_manifest("insecure", ns)), check=False
    )
    assert rejected.returncode != 0
    assert "violates PodSecurity" in rejected.stderr


def test_server_side_dry_run_returns_injected_pod_and_leaves_nothing(
    control_plane: ControlPlane, namespace: Namespace
) -> None:
    ns = namespace(traced=True)
    result = apply(control_plane, pod_manifest("dry", ns), "--dry-run=server", "-o", "json")
    assert sidecar_names(json.loads(result.stdout)) == ["otel-collector"]
    missing = control_plane.kubectl("get", "pod", "dry", "-n", ns, check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_webhook_down_fails_open_and_recovers(
    control_plane: ControlPlane, injector: LocalInjector, namespace: Namespace
) -> None:
    ns = namespace(traced=True)
    injector.process.stop()
    try:
        for index in range(5):
            apply(control_plane, pod_manifest(f"down-{index}", ns))
    finally:
        injector.process.start()
    for index in range(5):
        apply(control_plane, pod_manifest(f"up-{index}", ns))
    pods = {p["metadata"]["name"]: p for p in get_json(control_plane, "pods", "-n", ns)["items"]}
    assert len(pods) == 10, "no pod may be lost while the webhook is down"
    assert all(sidecar_names(pods[f"down-{i}"]) == [] for i in range(5))
    assert all(sidecar_names(pods[f"up-{i}"]) == ["otel-collector"] for i in range(5))


def test_reinvocation_does_not_inject_twice(
    control_plane: ControlPlane, injector: LocalInjector, namespace: Namespace, tmp_path: Path
) -> None:
    from tests.e2e.labeller import running_labeller

    ns = namespace(traced=True)
    with running_labeller(control_plane, tmp_path, namespace=ns) as calls:
        apply(control_plane, pod_manifest("twice", ns))
        assert calls(), "the second webhook was never called"
    pod = get_json(control_plane, "pod", "twice", "-n", ns)
    assert pod["metadata"]["labels"].get("labelled-by") == "second-webhook"
    assert sidecar_names(pod) == ["otel-collector"]
    env_names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
    assert len(env_names) == len(set(env_names)), env_names
    assert len(pod["spec"]["volumes"]) == len({v["name"] for v in pod["spec"]["volumes"]})


def test_mounted_collector_config_passes_otelcol_validate(
    control_plane: ControlPlane, namespace: Namespace, tmp_path: Path
) -> None:
    from bench.localcluster.binaries import ensure_binaries

    otelcol = ensure_binaries(["otelcol"]).otelcol
    ns = namespace(traced=True)
    text = wait_for(
        "the sidecar ConfigMap",
        lambda: (
            control_plane.kubectl(
                "get", "configmap", names.CONFIGMAP_NAME, "-n", ns, "-o", "jsonpath={.data.config\\.yaml}", check=False
            ).stdout
        ),
        timeout=30,
    )
    env = {
        **os.environ,
        "K8S_POD_NAME": "p",
        "K8S_NAMESPACE_NAME": ns,
        "K8S_POD_UID": str(uuid.uuid4()),
        "K8S_NODE_NAME": "node",
        "GOMEMLIMIT": "200MiB",
    }
    good = tmp_path / "config.yaml"
    good.write_text(text)
    done = subprocess.run(
        [str(otelcol), "validate", f"--config={good}"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # Control: validate really checks, so the pass above means something.
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("memory_limiter:", "memory_limiterr:", 1))
    failed = subprocess.run(
        [str(otelcol), "validate", f"--config={broken}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert failed.returncode != 0
