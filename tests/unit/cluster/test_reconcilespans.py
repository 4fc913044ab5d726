"""The reconciler's spans against the loopback stub API server: one span per reconcile
with its decision, the API calls as client spans under it whose traceparent reaches the
server, no spans for the informers' polling, and a link to the admission of a pod that
opted in by its own label."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind

from tests.unit.cluster.stubapi import Reply, StubApi, serve_collection, stub_api
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.reconciler import Reconciler
from webhook.cluster.reconcilespans import SOURCE_SPAN_NAME, SPAN_NAME
from webhook.config.settings import Settings
from webhook.core import names
from webhook.core.settings import InjectionSettings

OWN = "otel-injector"
TRACED = {names.TRACING_LABEL: names.TRACING_ENABLED}
ADMISSION = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}, "resourceVersion": "1"}}


def opted_in_pod(ns: str, annotations: dict[str, str]) -> dict[str, Any]:
    status = '{"configMap":"otel-collector-sidecar","mode":"native"}'
    return {
        "metadata": {
            "name": "solo",
            "namespace": ns,
            "resourceVersion": "5",
            "labels": TRACED,
            "annotations": {names.STATUS_ANNOTATION: status, **annotations},
        },
        "status": {"phase": "Running"},
    }


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        serve_collection(
            running, api_path("v1", "namespaces"), [namespace(OWN), namespace("shop", TRACED), namespace("plain")]
        )
        source = {
            "metadata": {"name": "source", "namespace": OWN, "resourceVersion": "1"},
            "data": {"config.yaml": "{}"},
        }
        serve_collection(running, configmap_path(OWN), [source])
        serve_collection(running, api_path("v1", "configmaps"), [])
        serve_collection(
            running, api_path("v1", "pods"), [opted_in_pod("plain", {names.ADMISSION_TRACE_ANNOTATION: ADMISSION})]
        )
        for ns in ("shop", "plain"):
            running.on("POST", configmap_path(ns), lambda r: Reply(201, r.json()))
        yield running


def run_until_copies(stub: StubApi) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(reconcile=True, collector_source="source", injection=InjectionSettings(namespace=OWN))
    controller = Reconciler(stub.kube(tracer=provider.get_tracer("test")), settings, instance="me")
    controller.start()
    try:
        wait_until("both copies", lambda: all(stub.calls("POST", configmap_path(ns)) for ns in ("shop", "plain")))
        wait_until("their spans", lambda: len([s for s in exporter.get_finished_spans() if s.name == SPAN_NAME]) >= 3)
    finally:
        controller.stop(timeout=5)
    return list(exporter.get_finished_spans())


def reconcile_span(spans: list[ReadableSpan], ns: str) -> ReadableSpan:
    (span,) = [
        s
        for s in spans
        if s.name == SPAN_NAME and (s.attributes or {}).get("k8s.namespace.name") == ns
        if (s.attributes or {}).get("otel_injector.decision") == "create"
    ]
    return span


def test_a_reconcile_is_a_span_with_its_api_calls_under_it(stub: StubApi) -> None:
    spans = run_until_copies(stub)
    span = reconcile_span(spans, "shop")
    assert span.kind is SpanKind.INTERNAL
    assert span.parent is None
    attributes = dict(span.attributes or {})
    assert attributes["otel_injector.object"] == "namespace/shop"
    assert str(attributes["otel_injector.reason"]).startswith("copy missing (namespace labelled tracing=enabled")
    children = [s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id]
    names_seen = sorted(s.name for s in children)
    assert names_seen == [
        "GET /api/v1/namespaces/{namespace}/configmaps/{name}",
        "POST /api/v1/namespaces/{namespace}/configmaps",
    ]
    post = next(s for s in children if s.name.startswith("POST"))
    assert post.kind is SpanKind.CLIENT
    assert dict(post.attributes or {})["http.response.status_code"] == 201
    assert dict(post.attributes or {})["server.address"] == "127.0.0.1"
    (sent,) = stub.calls("POST", configmap_path("shop"))
    version, trace_id, span_id, flags = sent.headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{post.context.trace_id:032x}", f"{post.context.span_id:016x}")
    assert flags == "01"  # sampled, and no Level 2 flag the apiserver would reject
    # A namespace that wants a copy because of its label links to no admission.
    assert not span.links


def test_polling_makes_no_spans(stub: StubApi) -> None:
    spans = run_until_copies(stub)
    roots = {s.name for s in spans if s.parent is None}
    assert roots == {SPAN_NAME, SOURCE_SPAN_NAME}
    watches = [r for r in stub.requests if r.query.get("watch", "").lower() == "true"]
    assert watches
    assert all("traceparent" not in r.headers for r in watches)


def test_a_copy_for_an_opted_in_pod_links_to_its_admission(stub: StubApi) -> None:
    span = reconcile_span(run_until_copies(stub), "plain")
    assert str(dict(span.attributes or {})["otel_injector.reason"]).startswith("copy missing (1 injected pod(s)")
    (link,) = span.links
    assert f"{link.context.trace_id:032x}" == ADMISSION.split("-")[1]
    assert f"{link.context.span_id:016x}" == ADMISSION.split("-")[2]
    assert dict(link.attributes or {}) == {"otel_injector.link": "admission", "k8s.pod.name": "solo"}


def test_reading_the_source_config_is_a_span(stub: StubApi) -> None:
    (span,) = [s for s in run_until_copies(stub) if s.name == SOURCE_SPAN_NAME]
    attributes = dict(span.attributes or {})
    assert attributes["otel_injector.object"] == f"configmap/{OWN}/source"
    assert attributes["otel_injector.decision"] == "update"
    assert str(attributes["otel_injector.config_hash"])


class BrokenTracer(NoOpTracer):
    """A tracer whose every span fails to start."""

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("telemetry is down")


def test_a_broken_tracer_never_blocks_a_reconcile(stub: StubApi) -> None:
    settings = Settings(reconcile=True, collector_source="source", injection=InjectionSettings(namespace=OWN))
    controller = Reconciler(stub.kube(tracer=BrokenTracer()), settings, instance="me")
    controller.start()
    try:
        wait_until("both copies", lambda: all(stub.calls("POST", configmap_path(ns)) for ns in ("shop", "plain")))
    finally:
        controller.stop(timeout=5)
    assert all("traceparent" not in r.headers for r in stub.requests)
