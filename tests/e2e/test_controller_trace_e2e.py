"""The controllers' traces on the real control plane and the real Jaeger.

* A reconcile is a span in Jaeger (service ``otel-injector``, ``reconcile namespace``), with
  its decision and reason, and its API calls as client spans under it. The session's
  injector uses the admin kubeconfig (group ``system:masters``), which the apiserver
  trusts: its own request spans hang under our client spans, in the same trace.
* Under a ServiceAccount token, as the chart runs the injector, the apiserver does not
  trust the ``traceparent``: its request span starts a trace of its own and *links* to our
  client span (kube-apiserver's ``WithTracing`` filter makes every caller outside
  ``system:masters`` and ``system:monitoring`` a public endpoint). The test shows which one
  happens rather than assuming it.
* A pod that opts in by its own label in an unlabelled namespace makes the reconciler
  create a copy there, and that reconcile span links to the pod's admission span.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from bench.localcluster.controlplane import ControlPlane
from bench.localcluster.injector import wait_for
from bench.localcluster.tracetree import SpanNode, build_tree, find_span, render
from tests.e2e.conftest import get_json, wait_for_pods
from webhook.cluster.client import Kube
from webhook.cluster.paths import configmap_path
from webhook.core import names
from webhook.telemetry.controllerspans import work_span

pytestmark = pytest.mark.e2e

RECONCILE = "reconcile namespace"


def jaeger_traces(cp: ControlPlane, service: str, tags: dict[str, str], operation: str = "") -> list[dict[str, Any]]:
    query = f"/api/traces?service={quote(service)}&limit=20&lookback=1h&tags={quote(json.dumps(tags))}"
    if operation:
        query += f"&operation={quote(operation)}"
    return list(cp.jaeger_api(query).get("data") or [])


Found = tuple[dict[str, Any], list[SpanNode], SpanNode]


def reconcile_trace(cp: ControlPlane, ns: str, decision: str = "create", *, apiserver: bool = False) -> Found:
    """The trace (Jaeger's JSON, its tree, the reconcile span) of the reconcile that took
    ``decision`` in ``ns``, once its client spans (and with ``apiserver``, the apiserver's
    spans under the POST) have arrived."""
    tags = {"k8s.namespace.name": ns, "otel_injector.decision": decision}

    def found() -> Found | None:
        for summary in jaeger_traces(cp, "otel-injector", tags, RECONCILE):
            trace = cp.jaeger_api(f"/api/traces/{summary['traceID']}")["data"][0]
            roots = build_tree(trace)
            span = find_span(roots, service="otel-injector", name=RECONCILE)
            posts = [c for c in (span.children if span is not None else []) if c.name.startswith("POST ")]
            if span is not None and posts and (not apiserver or any(n.service == "apiserver" for n in posts[0].walk())):
                return trace, roots, span
        return None

    result: Found = wait_for(f"the reconcile of {ns} in Jaeger", found, timeout=45)
    return result


def test_a_reconcile_is_a_span_with_its_api_calls_under_it(
    control_plane: ControlPlane, namespace: Callable[..., str]
) -> None:
    ns = namespace(traced=True)
    # The admin kubeconfig is system:masters: the apiserver continues our trace, so its
    # spans arrive under our client span (waited for, bounded, inside reconcile_trace).
    _, roots, span = reconcile_trace(control_plane, ns, apiserver=True)
    assert span.tags["otel_injector.object"] == f"namespace/{ns}", render(roots)
    assert str(span.tags["otel_injector.reason"]).startswith("copy missing (namespace labelled"), render(roots)
    calls = {c.name: c for c in span.children if c.service == "otel-injector"}
    assert set(calls) >= {
        "GET /api/v1/namespaces/{namespace}/configmaps/{name}",
        "POST /api/v1/namespaces/{namespace}/configmaps",
    }, render(roots)
    post = calls["POST /api/v1/namespaces/{namespace}/configmaps"]
    assert post.tags["span.kind"] == "client", render(roots)
    assert post.tags["http.response.status_code"] == 201, render(roots)
    assert [n for n in post.walk() if n.service == "apiserver"], render(roots)


def test_under_a_service_account_the_apiserver_links_instead_of_parenting(control_plane: ControlPlane) -> None:
    ns = f"e2e-sa-{uuid.uuid4().hex[:6]}"
    cp = control_plane
    cp.kubectl("create", "namespace", ns)
    cp.kubectl("create", "serviceaccount", "otel-injector", "-n", ns)
    cp.kubectl("create", "role", "cm", "-n", ns, "--verb=get,create", "--resource=configmaps")
    cp.kubectl("create", "rolebinding", "cm", "-n", ns, "--role=cm", f"--serviceaccount={ns}:otel-injector")
    token = cp.kubectl("create", "token", "otel-injector", "-n", ns, "--duration", "1h").stdout.strip()
    kubeconfig = cp.workdir / f"{ns}.kubeconfig"
    kubeconfig.write_text(cp.kubeconfig_text("sa", {"token": token}, cluster="local", context="sa"), encoding="utf-8")
    service = f"sa-probe-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{cp.jaeger_otlp_http_endpoint}/v1/traces")))
    kube = Kube.connect(str(kubeconfig), tracer=provider.get_tracer("probe"))
    try:
        with work_span(kube.tracer, RECONCILE, {"k8s.namespace.name": ns}):
            kube.create(configmap_path(ns), {"metadata": {"name": "probe"}, "data": {}})
    finally:
        kube.close()
        provider.shutdown()

    def ours() -> dict[str, Any] | None:
        traces = jaeger_traces(cp, service, {"k8s.namespace.name": ns})
        return cp.jaeger_api(f"/api/traces/{traces[0]['traceID']}")["data"][0] if traces else None

    trace: dict[str, Any] = wait_for("the probe's trace", ours, timeout=30)
    roots = build_tree(trace)
    post = find_span(roots, service=service, name="POST /api/v1/namespaces/{namespace}/configmaps")
    assert post is not None, render(roots)

    # A trace of the apiserver's own whose request span links to our client span ...
    def linked() -> list[dict[str, Any]] | None:
        query = "/api/traces?service=apiserver&limit=200&lookback=5m"
        found = []
        for candidate in cp.jaeger_api(query).get("data") or []:
            for span in candidate.get("spans") or []:
                refs = span.get("references") or []
                if any(r.get("spanID") == post.span_id and r.get("refType") != "CHILD_OF" for r in refs):
                    found.append(span)
        return found or None

    spans: list[dict[str, Any]] = wait_for("an apiserver span linking to the client span", linked, timeout=30)
    assert spans[0]["traceID"] != trace["traceID"]
    assert spans[0]["operationName"] == "POST /api/v1/namespaces/{:namespace}/configmaps"
    # ... and, once the apiserver has exported, none of its spans in our trace.
    again = build_tree(cp.jaeger_api(f"/api/traces/{trace['traceID']}")["data"][0])
    assert not [n for r in again for n in r.walk() if n.service == "apiserver"], render(again)
    cp.kubectl("delete", "namespace", ns, "--wait=false")


def test_a_copy_for_an_opted_in_pod_links_to_its_admission(
    control_plane: ControlPlane, namespace: Callable[..., str]
) -> None:
    ns = namespace(traced=False)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "solo", "namespace": ns, "labels": {"tracing": "enabled", "app": "solo"}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))
    (created,) = wait_for_pods(control_plane, ns, "app=solo")
    recorded = created["metadata"]["annotations"].get(names.ADMISSION_TRACE_ANNOTATION)
    assert recorded, f"the pod carries no {names.ADMISSION_TRACE_ANNOTATION}: {created['metadata']}"
    _, trace_id, span_id, _ = recorded.split("-")
    trace, roots, span = reconcile_trace(control_plane, ns)
    assert "injected pod(s) labelled tracing=enabled" in str(span.tags["otel_injector.reason"]), render(roots)
    (raw,) = [s for s in trace["spans"] if s["spanID"] == span.span_id]
    links = [r for r in raw.get("references") or [] if r.get("refType") != "CHILD_OF"]
    assert [(r["traceID"], r["spanID"]) for r in links] == [(trace_id, span_id)], raw
    # The link points at the webhook's own admission span of that pod.
    admission = control_plane.jaeger_api(f"/api/traces/{trace_id}")["data"][0]
    (target,) = [s for s in admission["spans"] if s["spanID"] == span_id]
    assert target["operationName"] == "POST /mutate"
    assert get_json(control_plane, "configmap", names.CONFIGMAP_NAME, "-n", ns)["metadata"]["name"]
