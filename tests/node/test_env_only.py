"""Env-only injection on a real node: a pod with ``sidecar-mode: none`` and ``endpoint: node``
gets no sidecar, and its span reaches Jaeger through a collector on the node's address
(``status.hostIP``, port 4318), which the kubelet put into ``OTEL_EXPORTER_OTLP_ENDPOINT``
by expanding ``$(OTEL_NODE_IP)``; without that collector nothing arrives. The same span
carries the conventions' attributes as the real Python SDK decoded them: ``service.version``
from the image tag, ``service.instance.id`` and a ``resource.opentelemetry.io/*`` value with
characters that must be percent-encoded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import (
    SIDECAR,
    apply,
    find_spans,
    job,
    no_spans,
    pods,
    resource,
    unique,
    wait_job_complete,
    wait_pod_ready,
)

pytestmark = pytest.mark.e2e

NODE_COLLECTOR = "node-collector"


def node_collector(namespace: str, image: str, exporter_endpoint: str) -> list[dict[str, Any]]:
    """A collector on the node's network (``hostNetwork``), OTLP on all of the node's
    addresses, exporting to Jaeger: what a node-agent DaemonSet would run."""
    config = {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}
        },
        "exporters": {"otlp_grpc": {"endpoint": exporter_endpoint, "tls": {"insecure": True}}},
        "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_grpc"]}},
        },
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NODE_COLLECTOR, "namespace": namespace},
        "data": {"config.yaml": json.dumps(config)},  # JSON is YAML
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        # Not traced itself: it is the collector.
        "metadata": {"name": NODE_COLLECTOR, "namespace": namespace, "labels": {"tracing": "disabled"}},
        "spec": {
            "hostNetwork": True,
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "otelcol",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": ["--config=/etc/otelcol/config.yaml"],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 13133}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/otelcol", "readOnly": True}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            "volumes": [{"name": "config", "configMap": {"name": NODE_COLLECTOR}}],
        },
    }
    return [config_map, pod]


def test_env_only_pod_exports_to_the_collector_on_its_node(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    apply(cluster, *node_collector(ns, cluster.images.collector.name, cluster.jaeger_otlp_grpc_endpoint))
    collector = wait_pod_ready(cluster, ns, "tracing=disabled", timeout=60)

    name, span = unique("envonly"), unique("span")
    annotations = {
        "otel-injector.io/sidecar-mode": "none",
        "otel-injector.io/endpoint": "node",
        "resource.opentelemetry.io/team": "payments, EU; 100%",
    }
    apply(cluster, job(name, ns, cluster.images.demo_app.name, span, annotations=annotations))
    wait_job_complete(cluster, ns, name)
    (pod,) = pods(cluster, ns, f"job-name={name}")

    # No sidecar, no volume: only the env; the status record says which mode.
    containers = [c["name"] for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])]
    assert SIDECAR not in containers, containers
    assert not any(v["name"] == "otel-collector-config" for v in pod["spec"].get("volumes", []))
    status = json.loads(pod["metadata"]["annotations"]["otel-injector.io/status"])
    assert (status["mode"], status["endpoint"]) == ("none", "node")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://$(OTEL_NODE_IP):4318"
    assert pod["status"]["hostIP"] == collector["status"]["hostIP"]  # one node: the collector is on it

    ((trace, found),) = find_spans(cluster, service=name, operation=span)[:1]
    attrs = resource(trace, found)
    pod_name = pod["metadata"]["name"]
    assert attrs["k8s.pod.name"] == pod_name
    assert attrs["k8s.job.name"] == name
    assert attrs["service.instance.id"] == f"{ns}.{pod_name}.app"
    assert attrs["service.version"] == cluster.images.demo_app.name.rsplit(":", 1)[1]
    assert attrs["team"] == "payments, EU; 100%"  # percent-encoded by us, decoded by the SDK

    # Negative control: without the node's collector the same kind of pod sends nothing
    # anywhere (it has no sidecar to fall back on), so the span above came through it.
    cluster.kubectl("delete", "pod", NODE_COLLECTOR, "-n", ns, "--wait=true")
    alone = unique("envonly-alone")
    apply(cluster, job(alone, ns, cluster.images.demo_app.name, span, annotations=annotations))
    wait_job_complete(cluster, ns, alone)
    assert no_spans(cluster, service=alone)
