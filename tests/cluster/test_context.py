"""The cluster context on a real control plane: a real ``otel-injector serve`` with its caches
(namespaces, named collector configs, envFrom ConfigMaps) is the apiserver's admission webhook.

* a namespace's annotation changes what its next pod gets (and the pod's own value wins);
* a named collector config is copied into the namespace that chooses it, mounted by its pods
  with its hash in their status, and removed when nothing uses it;
* an ``envFrom`` ConfigMap's ``OTEL_SERVICE_NAME`` wins over the injected one (with a
  negative control in the same namespace).

No kubelet: pods stay Pending, which is all admission and the reconciler need.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import ReconcilingWebhook, Tls, make_namespace, reconciling_webhook, unique
from tests.support import wait_for
from webhook.cluster.client import Kube
from webhook.cluster.copies import HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL
from webhook.cluster.paths import api_path, configmap_path
from webhook.core import names
from webhook.core.context import COLLECTOR_CONFIG_ANNOTATION, COLLECTOR_CONFIG_LABEL
from webhook.core.settings import config_hash

pytestmark = pytest.mark.e2e

SOURCE = "collector-source"
TEAM_CONFIG = "# team a\nreceivers:\n  otlp:\n    protocols:\n      grpc: {}\n"
#: Seconds within which a change must reach the caches (a watch event) or the reconciler.
PROMPT = 10.0


@pytest.fixture(scope="module")
def web(cluster: ControlPlane, kube: Kube, loopback_tls: Tls) -> Iterator[ReconcilingWebhook]:
    env = {"OTEL_INJECTOR_CLUSTER_CONTEXT": "true", "OTEL_INJECTOR_POD_GRACE_SECONDS": "1"}
    with reconciling_webhook(
        cluster, kube, loopback_tls, "context", source=SOURCE, config="receivers: {}\n", env=env
    ) as running:
        yield running


def traced_namespace(
    kube: Kube, web: ReconcilingWebhook, prefix: str, annotations: dict[str, str] | None = None
) -> str:
    name = make_namespace(kube, unique(prefix), {web.namespace_label: "true", names.TRACING_LABEL: "enabled"})
    web.namespaces.append(name)
    if annotations:
        annotate_namespace(kube, name, annotations)
    return name


def annotate_namespace(kube: Kube, name: str, annotations: Mapping[str, str | None]) -> None:
    kube.merge_patch(api_path("v1", "namespaces", None, name), {"metadata": {"annotations": annotations}})


def create_pod(kube: Kube, namespace: str, *, annotations: dict[str, str] | None = None, **container: Any) -> Any:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "app-", "namespace": namespace, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", **container}]},
    }
    return kube.create(api_path("v1", "pods", namespace), body)


def status_of(pod: Any) -> dict[str, Any] | None:
    raw = (pod["metadata"].get("annotations") or {}).get(names.STATUS_ANNOTATION)
    return json.loads(raw) if raw else None


def sidecar_of(pod: Any) -> Any:
    (sidecar,) = [c for c in pod["spec"].get("initContainers", []) if c["name"] == names.CONTAINER_NAME]
    return sidecar


def app_env(pod: Any) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}


def injected(kube: Kube, namespace: str, **kwargs: Any) -> Any:
    """A pod created through the webhook and injected (the webhook registration takes a
    moment to reach the apiserver's cache: retried until then)."""

    def attempt() -> Any:
        pod = create_pod(kube, namespace, **kwargs)
        return pod if status_of(pod) else None

    return wait_for(f"an injected pod in {namespace}", attempt, timeout=PROMPT, interval=0.5)


def test_a_namespace_annotation_changes_what_its_next_pod_gets(web: ReconcilingWebhook, kube: Kube) -> None:
    namespace = traced_namespace(kube, web, "ns-defaults")
    before = injected(kube, namespace)
    assert sidecar_of(before)["resources"]["limits"]["memory"] == "256Mi"

    annotate_namespace(kube, namespace, {"otel-injector.io/memory-limit": "512Mi"})

    def next_pod_has_it() -> Any:
        pod = create_pod(kube, namespace)
        return pod if sidecar_of(pod)["resources"]["limits"]["memory"] == "512Mi" else None

    after = wait_for("a pod with the namespace's memory limit", next_pod_has_it, timeout=PROMPT, interval=0.2)
    assert sidecar_of(after)["env"][-1] == {"name": "GOMEMLIMIT", "value": "409MiB"}
    own = create_pod(kube, namespace, annotations={"otel-injector.io/memory-limit": "384Mi"})
    assert sidecar_of(own)["resources"]["limits"]["memory"] == "384Mi"  # the pod's own value wins


def test_a_named_config_is_copied_mounted_and_removed(web: ReconcilingWebhook, kube: Kube) -> None:
    name = unique("team")
    copy = f"{names.CONFIGMAP_NAME}-{name}"
    kube.create(
        configmap_path(web.namespace),
        {
            "metadata": {"name": f"src-{name}", "namespace": web.namespace, "labels": {COLLECTOR_CONFIG_LABEL: name}},
            "data": {names.CONFIG_KEY: TEAM_CONFIG},
        },
    )
    expected = config_hash(TEAM_CONFIG.encode())
    namespace = traced_namespace(kube, web, "named", {COLLECTOR_CONFIG_ANNOTATION: name})

    def managed_copy() -> Any:
        cm = kube.get_or_none(configmap_path(namespace, copy))
        if cm is None or cm["metadata"].get("labels", {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
            return None
        return cm if cm["metadata"]["annotations"].get(HASH_ANNOTATION) == expected else None

    cm: Any = wait_for(f"the copy {copy} in {namespace}", managed_copy, timeout=PROMPT)
    assert cm["data"] == {names.CONFIG_KEY: TEAM_CONFIG}

    def pod_on_it() -> Any:
        pod = create_pod(kube, namespace)
        status = status_of(pod) or {}
        return pod if status.get("collectorConfig") == name else None

    pod = wait_for("a pod on the named config", pod_on_it, timeout=PROMPT, interval=0.2)
    status = status_of(pod) or {}
    assert status["configHash"] == expected
    assert status["configMap"] == copy
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == names.VOLUME_NAME]
    assert volume["configMap"]["name"] == copy
    assert pod["metadata"]["labels"][COLLECTOR_CONFIG_LABEL] == name

    # The namespace stops choosing it: the pods still using it keep the copy ...
    annotate_namespace(kube, namespace, {COLLECTOR_CONFIG_ANNOTATION: None})
    users = [
        p
        for p in kube.list(api_path("v1", "pods", namespace))[0]
        if COLLECTOR_CONFIG_LABEL in (p["metadata"].get("labels") or {})
    ]
    assert users
    assert kube.get_or_none(configmap_path(namespace, copy)) is not None
    # ... and once none is left (and the 1 s grace has passed), it is removed.
    for user in users:
        kube.delete(api_path("v1", "pods", namespace, user["metadata"]["name"]))
    wait_for(
        f"the copy {copy} removed", lambda: kube.get_or_none(configmap_path(namespace, copy)) is None, timeout=PROMPT
    )
    assert kube.get_or_none(configmap_path(namespace, names.CONFIGMAP_NAME)) is not None  # the default copy stays


def test_an_env_from_configmaps_service_name_wins(web: ReconcilingWebhook, kube: Kube) -> None:
    namespace = traced_namespace(kube, web, "env-from")
    control = injected(kube, namespace)
    assert app_env(control)["OTEL_SERVICE_NAME"] == "app"  # negative control: ours without envFrom
    kube.create(
        configmap_path(namespace),
        {"metadata": {"name": "app-otel", "namespace": namespace}, "data": {"OTEL_SERVICE_NAME": "from-configmap"}},
    )

    def wins() -> Any:
        pod = create_pod(kube, namespace, envFrom=[{"configMapRef": {"name": "app-otel"}}])
        return pod if "OTEL_SERVICE_NAME" not in app_env(pod) else None

    pod = wait_for("a pod whose envFrom service name wins", wins, timeout=PROMPT, interval=0.2)
    status = status_of(pod) or {}
    assert "OTEL_SERVICE_NAME" not in status["env"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in app_env(pod)  # the rest is still injected
    other = create_pod(kube, namespace, envFrom=[{"configMapRef": {"name": "no-such", "optional": True}}])
    assert app_env(other)["OTEL_SERVICE_NAME"] == "app"
