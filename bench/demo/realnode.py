"""The user's story on a cluster with a real node (``make demo``).

1. label a namespace ``tracing=enabled``;
2. apply two Deployments of the demo app, a frontend that calls a backend Service;
3. show the pods Running, each with its collector started before its app;
4. send one request to the frontend;
5. print the admission trace (apiserver → webhook), the app's trace across both pods with
   the resource attributes each span carries, and a Job that completes with its native
   sidecar.

The demo app is configured only by the ``OTEL_*`` variables the webhook injects; the
manifests below name no endpoint, service name or attribute.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.localcluster.injector import LocalInjector, install, wait_for
from bench.localcluster.node.cluster import NodeCluster, node_support_problem

NAMESPACE = "shop"
APP_PORT = 8080
DOWNSTREAM_ENV = "DOWNSTREAM_URL"
SIDECAR = "otel-collector"


def _app(name: str, image: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": name}
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": APP_PORT}],
        "readinessProbe": {"tcpSocket": {"port": APP_PORT}, "periodSeconds": 1},
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": APP_PORT}]},
        },
    ]


def _job(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "nightly-report", "namespace": NAMESPACE},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "report", "image": image, "imagePullPolicy": "Never", "args": ["emit", "report"]}
                    ],
                }
            },
        },
    }


def access_lines(cluster: NodeCluster) -> list[str]:
    """The three shell lines that reach the running cluster from any shell."""
    return [
        f"export KUBECONFIG={cluster.kubeconfig}",
        f"export JAEGER_URL={cluster.jaeger_query_url}",
        f"export DEMO_APP_IMAGE={cluster.images.demo_app.name}",
    ]


def walkthrough(cluster: NodeCluster, injector: LocalInjector, say: Callable[[str], None]) -> None:
    """Steps 1-5 of the story on a running ``cluster`` with the injector installed."""
    from bench.localcluster.traces import find_admission_trace
    from bench.localcluster.tracetree import build_tree, render

    def kubectl(*args: str, stdin: str | None = None, shown: str | None = None) -> str:
        say(f"    $ {shown or 'kubectl ' + ' '.join(args)}")
        out = cluster.kubectl(*args, input=stdin).stdout
        for line in out.strip().splitlines():
            say(f"      {line}")
        return out

    image = cluster.images.demo_app.name
    say("\n[1/5] Label a namespace for tracing")
    kubectl("create", "namespace", NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, "tracing=enabled")
    wait_for(
        "the collector config copy",
        lambda: (
            cluster.kubectl("get", "configmap", "otel-collector-sidecar", "-n", NAMESPACE, check=False).returncode == 0
        ),
        timeout=30,
    )

    say("\n[2/5] Apply a frontend and a backend Deployment of the demo app (plain manifests)")
    backend = _app("backend", image)
    frontend = _app("frontend", image, {DOWNSTREAM_ENV: f"http://backend.{NAMESPACE}.svc.cluster.local:{APP_PORT}/"})
    text = "\n---\n".join(json.dumps(d) for d in (*backend, *frontend))
    kubectl("apply", "-f", "-", stdin=text, shown="kubectl apply -f shop.yaml")

    say("\n[3/5] The pods run; each collector started before its app")
    pods = {name: _wait_ready(cluster, name) for name in ("backend", "frontend")}
    kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide")
    for name, pod in pods.items():
        sidecar, app = _status(pod, SIDECAR), _status(pod, name)
        say(
            f"      {pod['metadata']['name']}: {SIDECAR} started {sidecar['state']['running']['startedAt']}, "
            f"{name} started {app['state']['running']['startedAt']}"
        )

    say("\n[4/5] Send one request to the frontend")
    front = pods["frontend"]["metadata"]["name"]
    code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{APP_PORT}/', timeout=20).status)"
    kubectl("exec", "-n", NAMESPACE, front, "-c", "frontend", "--", "python3", "-c", code)

    say("\n[5/5] What Jaeger shows")
    say("  a) the admission of a pod: apiserver → Call mutating webhook → otel-injector")
    trace = find_admission_trace(cluster, namespace=NAMESPACE)
    for line in render(build_tree(trace)).splitlines():
        say(f"      {line}")
    say("  b) the request, across both pods, with each span's resource attributes")
    app_trace = wait_for("the frontend → backend trace", lambda: _joint_trace(cluster), timeout=60, interval=1)
    for line in _render_app_trace(app_trace):
        say(f"      {line}")
    say("  c) a Job with the native sidecar")
    kubectl("apply", "-f", "-", stdin=json.dumps(_job(image)), shown="kubectl apply -f nightly-report.yaml")
    started = time.monotonic()
    wait_for("Job nightly-report to complete", lambda: _job_complete(cluster), timeout=120, interval=0.5)
    pod = json.loads(
        cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", "job-name=nightly-report", "-o", "json").stdout
    )["items"][0]
    sidecar = _status(pod, SIDECAR)["state"].get("terminated", {})
    report = _status(pod, "report")["state"].get("terminated", {})
    say(
        f"      Job Complete in {time.monotonic() - started:.1f}s: report exited {report.get('exitCode')}, "
        f"then the sidecar got SIGTERM and exited {sidecar.get('exitCode')}"
    )
    spans = wait_for("the Job's span", lambda: _spans(cluster, "nightly-report"), timeout=60, interval=1)
    say(f"      its span 'report' in Jaeger: {_attrs_line(spans[0][0], spans[0][1])}")


def _wait_ready(cluster: NodeCluster, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        items = json.loads(
            cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={name}", "-o", "json").stdout
        )["items"]
        for pod in items:
            if any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])):
                return dict(pod)
        return None

    result: dict[str, Any] = wait_for(f"pod {name} Ready", ready, timeout=180, interval=0.5)
    return result


def _status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    status = pod["status"]
    for entry in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        if entry["name"] == name:
            return dict(entry)
    raise KeyError(name)


def _job_complete(cluster: NodeCluster) -> bool:
    job = json.loads(cluster.kubectl("get", "job", "nightly-report", "-n", NAMESPACE, "-o", "json").stdout)
    return any(c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def _joint_trace(cluster: NodeCluster) -> dict[str, Any] | None:
    for trace in cluster.jaeger_api("/api/traces?service=frontend&limit=20&lookback=1h").get("data") or []:
        services = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
        if {"frontend", "backend"} <= services:
            return dict(trace)
    return None


def _spans(cluster: NodeCluster, service: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    traces = cluster.jaeger_api(f"/api/traces?service={service}&limit=5&lookback=1h").get("data") or []
    return [(t, s) for t in traces for s in t["spans"]]


def _attrs_line(trace: dict[str, Any], span: dict[str, Any]) -> str:
    process = trace["processes"][span["processID"]]
    tags = {t["key"]: t["value"] for t in process.get("tags", []) if str(t["key"]).startswith(("k8s.", "service."))}
    tags = {"service.name": process["serviceName"], **tags}
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _render_app_trace(trace: dict[str, Any]) -> list[str]:
    """The trace as an indented tree, each span with its service's resource attributes."""
    spans = {s["spanID"]: s for s in trace["spans"]}
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for span in trace["spans"]:
        parent = next((r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"), None)
        if parent is not None and parent in spans:
            children.setdefault(parent, []).append(span["spanID"])
        else:
            roots.append(span["spanID"])
    lines = [f"trace {trace['traceID']}"]
    shown: set[str] = set()

    def walk(span_id: str, depth: int) -> None:
        span = spans[span_id]
        service = trace["processes"][span["processID"]]["serviceName"]
        ms = span.get("duration", 0) / 1000
        lines.append(f"{'  ' * depth}{service}: {span['operationName']} ({ms:.1f} ms)")
        if service not in shown:
            shown.add(service)
            lines.append(f"{'  ' * depth}  resource: {_attrs_line(trace, span)}")
        for child in sorted(children.get(span_id, []), key=lambda c: spans[c]["startTime"]):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda r: spans[r]["startTime"]):
        walk(root, 0)
    return lines


def run(args: argparse.Namespace) -> int:
    """``make demo``: the story on a real node, or, where the machine cannot run one, a
    one-line reason and the node-less story. 0 when every step succeeded."""
    from bench.demo import story
    from bench.localcluster.controlplane import ControlPlaneError

    problem = node_support_problem()
    if problem is not None:
        story.say(f"No node on this machine ({problem}): showing the admission side only.")
        return story.run(args)

    def on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    say = story.say
    started = time.monotonic()
    say("otel-injector demo: building or reusing the cluster's binaries and images (a cold build takes minutes)")
    try:
        with NodeCluster(log=lambda m: say(f"  {m}")) as cluster:
            injector = install(cluster, log=lambda m: say(f"  {m}"))
            up = time.monotonic() - started
            say(f"\nThe cluster runs (a real node, CoreDNS, kube-proxy, Jaeger) after {up:.0f}s.")
            say("In any shell:")
            for line in access_lines(cluster):
                say(f"  {line}")
            walkthrough(cluster, injector, say)
            say(f"\nDemo finished in {time.monotonic() - started:.0f}s.")
            if args.once:
                return 0
            say("\nEverything keeps running; press Ctrl-C to stop and clean up. In any shell:")
            for line in access_lines(cluster):
                say(f"  {line}")
            while True:
                time.sleep(3600)
    except ControlPlaneError as err:
        print(f"\notel-injector demo failed:\n{err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("\nStopped; processes, mounts, namespaces and cgroups are cleaned up.")
        return 0
