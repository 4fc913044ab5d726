"""The controllers' span helpers: URL templates, work spans that never fail the work,
client spans only under work, and admission links from traceparent values."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind, StatusCode, Tracer

from webhook.telemetry.controllerspans import (
    ApiCall,
    admission_link,
    controller_tracer,
    decide,
    url_template,
    work_span,
)


def tracer() -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/namespaces", "/api/v1/namespaces"),
        ("/api/v1/namespaces/shop", "/api/v1/namespaces/{name}"),
        ("/api/v1/namespaces/shop/configmaps", "/api/v1/namespaces/{namespace}/configmaps"),
        ("/api/v1/namespaces/shop/configmaps/otel", "/api/v1/namespaces/{namespace}/configmaps/{name}"),
        ("/api/v1/configmaps?labelSelector=x", "/api/v1/configmaps"),
        (
            "/apis/apps/v1/namespaces/shop/deployments/web/scale",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        ),
        (
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/otel-injector",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}",
        ),
        ("/version", "/version"),
    ],
)
def test_url_template(path: str, template: str) -> None:
    assert url_template(path) == template


def test_work_span_records_the_decision_and_a_failure() -> None:
    tracer_, exporter = tracer()
    with work_span(tracer_, "reconcile namespace", {"otel_injector.object": "namespace/a"}) as span:
        decide(span, "create", "copy missing")
    with pytest.raises(RuntimeError), work_span(tracer_, "reconcile namespace", {}):
        raise RuntimeError("boom")
    ok, failed = exporter.get_finished_spans()
    assert dict(ok.attributes or {}) == {
        "otel_injector.object": "namespace/a",
        "otel_injector.decision": "create",
        "otel_injector.reason": "copy missing",
    }
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]


class BrokenTracer(NoOpTracer):
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("telemetry is down")


def test_a_broken_tracer_never_fails_the_work() -> None:
    done = []
    with work_span(BrokenTracer(), "reconcile namespace", {}) as span:
        decide(span, "create", "x")
        done.append(True)
    with work_span(tracer()[0], "outer", {}), ApiCall(BrokenTracer(), "GET", "/api/v1/namespaces") as call:
        call.status(200)
        done.append(call.headers == {})
    assert done == [True, True]


def test_a_client_span_only_under_work() -> None:
    tracer_, exporter = tracer()
    with ApiCall(tracer_, "GET", "/api/v1/pods") as call:
        assert call.headers == {}
    assert not exporter.get_finished_spans()
    with work_span(tracer_, "work", {}), ApiCall(tracer_, "GET", "/api/v1/namespaces/a/pods", "10.0.0.1", 6443) as call:
        assert call.headers["traceparent"].startswith("00-")
        call.status(404)
    client, work = exporter.get_finished_spans()
    assert client.kind is SpanKind.CLIENT
    assert client.name == "GET /api/v1/namespaces/{namespace}/pods"
    assert client.parent is not None
    assert client.parent.span_id == work.context.span_id
    assert dict(client.attributes or {}) == {
        "http.request.method": "GET",
        "url.template": "/api/v1/namespaces/{namespace}/pods",
        "url.path": "/api/v1/namespaces/a/pods",
        "server.address": "10.0.0.1",
        "server.port": 6443,
        "http.response.status_code": 404,
        "error.type": "404",
    }
    assert client.status.status_code is StatusCode.ERROR


def test_no_provider_gives_a_no_op_tracer() -> None:
    assert isinstance(controller_tracer(None), NoOpTracer)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    ],
)
def test_a_bad_traceparent_gives_no_link(value: str | None) -> None:
    assert admission_link(value) is None


def test_a_traceparent_gives_a_link() -> None:
    link = admission_link("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", **{"k8s.pod.name": "p"})
    assert link is not None
    assert link.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert link.context.span_id == 0xB7AD6B7169203331
    assert link.context.trace_flags.sampled
    assert link.context.is_remote
    assert dict(link.attributes or {}) == {"otel_injector.link": "admission", "k8s.pod.name": "p"}


def test_the_traceparent_sent_has_only_the_sampled_flag() -> None:
    # kube-apiserver 1.36 drops a version-00 traceparent with flags above 02 (Level 2's
    # random flag), so only the sampled bit is sent.
    from opentelemetry.trace import SpanContext, TraceFlags

    from webhook.telemetry.controllerspans import level1_traceparent

    context = SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(0x03))
    assert level1_traceparent(context) == f"00-{0xAB:032x}-{0xCD:016x}-01"
    unsampled = SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(0x02))
    assert level1_traceparent(unsampled).endswith("-00")
