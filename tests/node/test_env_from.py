"""envFrom values win on a real node (issue 12 §7): a Job's container takes OTEL_SERVICE_NAME
and OTEL_RESOURCE_ATTRIBUTES from an envFrom ConfigMap; its span arrives in Jaeger under the
ConfigMap's service name, with the ConfigMap's attributes (its k8s.container.name winning
over ours) next to our k8s.* ones, which proves the kubelet expanded the injected
``$(OTEL_RESOURCE_ATTRIBUTES)`` reference to the envFrom value."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, find_spans, job, pods, resource, unique, wait_job_complete
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_env_from_service_name_and_attributes_win(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    name, span, service = unique("envfrom"), unique("span"), unique("from-configmap")
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-otel", "namespace": ns},
        "data": {"OTEL_SERVICE_NAME": service, "OTEL_RESOURCE_ATTRIBUTES": "team=envfrom,k8s.container.name=theirs"},
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(configmap))
    body = job(name, ns, cluster.images.demo_app.name, span)
    body["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "app-otel"}}]

    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-probe", "namespace": ns},
        "spec": body["spec"]["template"]["spec"],
    }

    def injected_as_wanted() -> bool:
        # The ConfigMap reaches the injector's cache by its watch; until then ours would win.
        # A server-side dry run of the same pod goes through the webhook and stores nothing.
        rendered = cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=yaml.safe_dump(probe))
        return '"OTEL_SERVICE_NAME"' not in rendered.stdout and "otel-injector.io/status" in rendered.stdout

    wait_for("the ConfigMap in the injector's cache", injected_as_wanted, timeout=10, interval=0.3)
    apply(cluster, body)
    wait_job_complete(cluster, ns, name)
    (pod,) = pods(cluster, ns, f"job-name={name}")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert "OTEL_SERVICE_NAME" not in env
    assert env["OTEL_RESOURCE_ATTRIBUTES"].endswith(",$(OTEL_RESOURCE_ATTRIBUTES)")

    ((trace, found),) = find_spans(cluster, service=service, operation=span)[:1]
    attrs = resource(trace, found)
    assert attrs["service.name"] == service
    assert attrs["team"] == "envfrom"
    # The ConfigMap's key wins over ours (k8s.container.name: the collector config upserts only
    # the pod-level k8s.* keys from the downward API, which are the truth whatever the app says).
    assert attrs["k8s.container.name"] == "theirs"
    assert attrs["k8s.namespace.name"] == ns
    assert attrs["k8s.pod.name"] == pod["metadata"]["name"]  # ours, next to it
    assert attrs["k8s.job.name"] == name
    # Negative control: the name we would have given (the Job's) is not a service.
    assert name not in cluster.jaeger_api("/api/services")["data"]
