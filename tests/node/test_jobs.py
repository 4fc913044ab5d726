"""A Job in a traced namespace completes with the native sidecar, and the span its app
emitted reaches Jaeger through the sidecar with the pod's real identity."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import (
    apply,
    container_state,
    container_status,
    find_spans,
    job,
    no_spans,
    pods,
    resource,
    unique,
    wait_job_complete,
)

pytestmark = pytest.mark.e2e


def test_job_completes_and_its_span_carries_the_real_pod_name(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace()
    name, span = unique("emit"), unique("span")
    apply(cluster, job(name, ns, cluster.images.demo_app.name, span))
    wait_job_complete(cluster, ns, name)

    (pod,) = pods(cluster, ns, f"job-name={name}")
    sidecar = container_status(pod, "otel-collector")
    # Native sidecar: an init container with restartPolicy Always that was stopped by the
    # kubelet once the app exited (0 = it shut down cleanly on SIGTERM).
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["otel-collector"]
    assert sidecar["state"].get("terminated", {}).get("exitCode") == 0, sidecar
    assert container_status(pod, "app")["state"]["terminated"]["exitCode"] == 0

    ((trace, found),) = find_spans(cluster, service=name, operation=span)[:1]
    attrs = resource(trace, found)
    assert attrs["k8s.pod.name"] == pod["metadata"]["name"]
    assert "$(" not in "".join(attrs.values())
    assert attrs["k8s.namespace.name"] == ns
    assert attrs["k8s.job.name"] == name
    assert attrs["service.name"] == name


def test_negative_control_untraced_namespace_gets_no_sidecar_and_no_span(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace(traced=False)
    name, span = unique("plain"), unique("span")
    apply(cluster, job(name, ns, cluster.images.demo_app.name, span))
    wait_job_complete(cluster, ns, name)
    (pod,) = pods(cluster, ns, f"job-name={name}")
    assert not pod["spec"].get("initContainers")
    # Without the injected OTEL_* variables the app has no service name of ours and no
    # collector to send to: nothing of it reaches Jaeger.
    assert no_spans(cluster, service=name)


def test_container_mode_job_never_completes_and_admission_warns(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace()
    name = unique("legacy")
    manifest = job(
        name, ns, cluster.images.demo_app.name, "legacy", annotations={"otel-injector.io/sidecar-mode": "container"}
    )
    apply(cluster, manifest)

    def app_done() -> bool:
        found = pods(cluster, ns, f"job-name={name}")
        if not found:
            return False
        state = container_state(found[0], "app")
        return bool(state.get("terminated", {}).get("exitCode") == 0)

    from tests.support import wait_for

    wait_for("the app container of the container-mode Job to exit 0", app_done, timeout=120, interval=1)
    (pod,) = pods(cluster, ns, f"job-name={name}")
    assert container_status(pod, "otel-collector")["state"].get("running"), "the plain sidecar container keeps running"
    status = cluster.kubectl("get", "job", name, "-n", ns, "-o", "jsonpath={.status.succeeded}").stdout
    assert status in ("", "0"), "a Job with a plain-container sidecar should never count as succeeded"

    # The webhook says so when it injects such a pod (server-side dry run shows the warning).
    template = manifest["spec"]["template"]
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": unique("probe"),
            "namespace": ns,
            "annotations": template["metadata"]["annotations"],
            "labels": {"job-name": name},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": pod["metadata"]["ownerReferences"][0]["uid"],
                }
            ],
        },
        "spec": template["spec"],
    }
    import json

    out = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(probe))
    assert "never complete" in out.stderr, out.stderr
