"""Helpers for the real-pod suites: manifests of the demo app, waiting for pods and Jobs,
and reading the app's spans back from Jaeger with their resource attributes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from bench.localcluster.node.cluster import NodeCluster
from tests.support import wait_for

SIDECAR = "otel-collector"
#: The demo app's HTTP port and the variable that names its downstream (see the image).
APP_PORT = 8080
DOWNSTREAM_ENV = "DOWNSTREAM_URL"


def unique(prefix: str) -> str:
    """A short, DNS-safe name that no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def get_json(cluster: NodeCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def apply(cluster: NodeCluster, *documents: Mapping[str, Any]) -> None:
    """kubectl apply the documents (JSON is YAML)."""
    text = "\n---\n".join(json.dumps(d) for d in documents)
    cluster.kubectl("apply", "-f", "-", input=text)


def app_container(
    image: str, args: Sequence[str], *, env: Mapping[str, str] | None = None, name: str = "app"
) -> dict[str, Any]:
    """The demo app container; ``args`` are ``["serve"]`` or ``["emit", NAME]``."""
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "args": list(args),
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if args and args[0] == "serve":
        container["ports"] = [{"name": "http", "containerPort": APP_PORT}]
        container["readinessProbe"] = {"tcpSocket": {"port": APP_PORT}, "periodSeconds": 1}
    return container


def job(
    name: str,
    namespace: str,
    image: str,
    span: str,
    *,
    annotations: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Job whose pod emits one span named ``span`` and exits."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": dict(annotations or {})},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [app_container(image, ["emit", span], env=env)],
                },
            },
        },
    }


def deployment(
    name: str,
    namespace: str,
    image: str,
    *,
    env: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    share_process_namespace: bool = False,
) -> dict[str, Any]:
    """A one-replica Deployment of the demo app serving HTTP."""
    pod_labels = {"app.kubernetes.io/name": name, **(labels or {})}
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 5,
        "containers": [app_container(image, ["serve"], env=env)],
    }
    if share_process_namespace:
        spec["shareProcessNamespace"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": pod_labels, "annotations": dict(annotations or {})}, "spec": spec},
        },
    }


def service(name: str, namespace: str) -> dict[str, Any]:
    """A ClusterIP Service in front of the Deployment ``name``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": APP_PORT, "targetPort": APP_PORT}],
        },
    }


def wait_job_complete(cluster: NodeCluster, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    """The Job once its Complete condition is True; fails early when it Failed."""

    def complete() -> dict[str, Any] | None:
        item: dict[str, Any] = get_json(cluster, "job", name, "-n", namespace)
        for condition in item.get("status", {}).get("conditions", []):
            if condition["type"] == "Failed" and condition["status"] == "True":
                raise AssertionError(f"Job {namespace}/{name} failed: {condition}\n{describe(cluster, namespace)}")
            if condition["type"] == "Complete" and condition["status"] == "True":
                return item
        return None

    result: dict[str, Any] = _wait(cluster, namespace, f"Job {namespace}/{name} Complete", complete, timeout)
    return result


def pods(cluster: NodeCluster, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
    return items


def wait_pod_ready(cluster: NodeCluster, namespace: str, selector: str, timeout: float = 120) -> dict[str, Any]:
    """The first pod matching ``selector`` once its Ready condition is True."""

    def ready() -> dict[str, Any] | None:
        for pod in pods(cluster, namespace, selector):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            for condition in pod.get("status", {}).get("conditions", []):
                if condition["type"] == "Ready" and condition["status"] == "True":
                    return pod
        return None

    result: dict[str, Any] = _wait(cluster, namespace, f"a Ready pod {selector} in {namespace}", ready, timeout)
    return result


def _wait(cluster: NodeCluster, namespace: str, what: str, probe: Callable[[], Any], timeout: float) -> Any:
    try:
        return wait_for(what, probe, timeout=timeout, interval=0.5)
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"{exc}\n{describe(cluster, namespace)}") from exc


def describe(cluster: NodeCluster, namespace: str) -> str:
    """Pods and events of ``namespace``, for a failure message."""
    out = cluster.kubectl("get", "pods,jobs,events", "-n", namespace, "-o", "wide", check=False)
    return f"--- kubectl get pods,jobs,events -n {namespace} ---\n{out.stdout}{out.stderr}"


def container_status(pod: Mapping[str, Any], name: str) -> dict[str, Any]:
    status = pod.get("status", {})
    for entry in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        if entry["name"] == name:
            return dict(entry)
    raise AssertionError(f"pod {pod['metadata']['name']} has no status for container {name}")


def container_state(pod: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The ``state`` of container ``name``, or {} while the kubelet has reported none yet."""
    status = pod.get("status", {})
    for entry in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        if entry["name"] == name:
            return dict(entry.get("state") or {})
    return {}


def exec_in(cluster: NodeCluster, namespace: str, pod: str, container: str, *command: str) -> str:
    """``kubectl exec`` and return stdout (through the apiserver and kubelet, as a user does)."""
    return cluster.kubectl("exec", "-n", namespace, pod, "-c", container, "--", *command).stdout


def python_in(cluster: NodeCluster, namespace: str, pod: str, code: str, container: str = "app") -> str:
    """Run ``code`` with the demo app's Python inside ``container``; return stdout."""
    return exec_in(cluster, namespace, pod, container, "python3", "-c", code)


# --- Jaeger ------------------------------------------------------------------------------


def resource(trace: Mapping[str, Any], span: Mapping[str, Any]) -> dict[str, str]:
    """The resource attributes (Jaeger: process tags, plus service.name) of ``span``."""
    process = trace["processes"][span["processID"]]
    tags = {str(t["key"]): str(t["value"]) for t in process.get("tags", [])}
    tags["service.name"] = process["serviceName"]
    return tags


def find_spans(
    cluster: NodeCluster, *, service: str, operation: str | None = None, timeout: float = 60.0
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(trace, span) pairs of ``service`` (and ``operation``), polling until one exists."""
    query = f"/api/traces?service={quote(service)}&limit=50&lookback=1h"
    if operation:
        query += f"&operation={quote(operation)}"

    def found() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        try:
            traces = cluster.jaeger_api(query).get("data") or []
        except Exception:
            return []
        return [
            (t, s)
            for t in traces
            for s in t.get("spans", [])
            if (operation is None or s["operationName"] == operation)
            and t["processes"][s["processID"]]["serviceName"] == service
        ]

    result: list[tuple[dict[str, Any], dict[str, Any]]] = wait_for(
        f"spans of service {service!r} op {operation!r} in Jaeger", found, timeout=timeout, interval=1
    )
    return result


def no_spans(cluster: NodeCluster, *, service: str, wait: float = 8.0) -> bool:
    """True when Jaeger still knows no service ``service`` after ``wait`` seconds."""
    time.sleep(wait)
    services = cluster.jaeger_api("/api/services").get("data") or []
    return service not in services
