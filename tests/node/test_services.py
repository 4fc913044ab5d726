"""A frontend → backend request crosses two pods through a Service and cluster DNS, and
Jaeger shows it as one trace; names outside the cluster zone get no answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import (
    APP_PORT,
    DOWNSTREAM_ENV,
    apply,
    deployment,
    python_in,
    resource,
    service,
    unique,
    wait_pod_ready,
)
from tests.support import wait_for

pytestmark = pytest.mark.e2e

REQUEST = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{APP_PORT}/', timeout=20).status)"


def test_frontend_to_backend_is_one_trace_across_two_pods(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    ns = namespace()
    backend, frontend = unique("backend"), unique("frontend")
    image = cluster.images.demo_app.name
    downstream = f"http://{backend}.{ns}.svc.cluster.local:{APP_PORT}/"
    apply(
        cluster,
        deployment(backend, ns, image),
        service(backend, ns),
        deployment(frontend, ns, image, env={DOWNSTREAM_ENV: downstream}),
    )
    back_pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={backend}")
    front_pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={frontend}")
    assert python_in(cluster, ns, front_pod["metadata"]["name"], REQUEST).strip() == "200"

    def joint_trace() -> dict[str, object] | None:
        traces = cluster.jaeger_api(f"/api/traces?service={frontend}&limit=20&lookback=1h").get("data") or []
        for trace in traces:
            services = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
            if {frontend, backend} <= services:
                return dict(trace)
        return None

    trace = wait_for("one trace holding frontend and backend spans", joint_trace, timeout=60, interval=1)
    spans = trace["spans"]
    assert isinstance(spans, list)
    pod_names = {resource(trace, s)["k8s.pod.name"] for s in spans}
    assert pod_names == {back_pod["metadata"]["name"], front_pod["metadata"]["name"]}
    # The backend's server span is a child of a frontend span: context crossed the wire.
    by_id = {s["spanID"]: s for s in spans}
    back_roots = [
        s
        for s in spans
        if resource(trace, s)["service.name"] == backend
        and any(r["refType"] == "CHILD_OF" and r["spanID"] in by_id for r in s.get("references", []))
    ]
    assert back_roots
    parents = {resource(trace, by_id[r["spanID"]])["service.name"] for s in back_roots for r in s["references"]}
    assert frontend in parents


def test_negative_control_names_outside_the_cluster_zone_do_not_resolve(
    cluster: NodeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace(traced=False)
    name = unique("dns")
    apply(cluster, deployment(name, ns, cluster.images.demo_app.name), service(name, ns))
    pod = wait_pod_ready(cluster, ns, f"app.kubernetes.io/name={name}")
    code = (
        "import socket\n"
        f"print(socket.gethostbyname('{name}.{ns}.svc.cluster.local'))\n"
        "try:\n"
        "    socket.gethostbyname('example.com')\n"
        "    print('resolved')\n"
        "except OSError:\n"
        "    print('refused')\n"
    )
    cluster_ip = cluster.kubectl("get", "service", name, "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    out = python_in(cluster, ns, pod["metadata"]["name"], code).split()
    assert out == [cluster_ip, "refused"]
