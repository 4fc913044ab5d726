"""A user's own OTEL_RESOURCE_ATTRIBUTES keys arrive merged with ours; a user's own
OTEL_SERVICE_NAME arrives unchanged."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import apply, find_spans, job, pods, resource, unique, wait_job_complete

pytestmark = pytest.mark.e2e


def test_user_attributes_merge_and_user_service_name_wins(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    name, span, service = unique("attrs"), unique("span"), unique("users-own-name")
    env = {"OTEL_RESOURCE_ATTRIBUTES": "team=payments,deployment.environment=bench", "OTEL_SERVICE_NAME": service}
    apply(cluster, job(name, ns, cluster.images.demo_app.name, span, env=env))
    wait_job_complete(cluster, ns, name)
    (pod,) = pods(cluster, ns, f"job-name={name}")

    ((trace, found),) = find_spans(cluster, service=service, operation=span)[:1]
    attrs = resource(trace, found)
    assert attrs["service.name"] == service
    assert attrs["team"] == "payments"
    assert attrs["deployment.environment"] == "bench"
    assert attrs["k8s.pod.name"] == pod["metadata"]["name"]
    assert attrs["k8s.job.name"] == name
    # Negative control: our inferred name (the Job's) is nowhere, the user's won.
    services = cluster.jaeger_api("/api/services")["data"]
    assert name not in services
