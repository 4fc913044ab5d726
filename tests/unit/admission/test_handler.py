"""The admission handler: bytes in, bytes out, with the phases as events of the current span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.support import review_for
from webhook.admission import handler as handler_module
from webhook.admission.handler import PHASES, AdmissionHandler
from webhook.admission.review import BadReview
from webhook.core.settings import InjectionSettings
from webhook.telemetry.metrics import Metrics

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


def handle_in_span(exporter: InMemorySpanExporter, body: bytes) -> tuple[bytes | BadReview, ReadableSpan]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handler = AdmissionHandler(InjectionSettings, Metrics())
    answer: bytes | BadReview
    with provider.get_tracer("test").start_as_current_span("POST /mutate"):
        try:
            answer = handler.handle(body)
        except BadReview as err:
            answer = err
    (span,) = exporter.get_finished_spans()
    return answer, span


def test_injection_records_the_phases_as_a_timeline(spans: InMemorySpanExporter) -> None:
    answer, span = handle_in_span(spans, orjson.dumps(review_for(POD, uid="u-1")))
    assert isinstance(answer, bytes)
    assert orjson.loads(answer)["response"]["patchType"] == "JSONPatch"
    assert tuple(e.name for e in span.events) == PHASES
    starts = [e.timestamp for e in span.events]
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time <= starts[0]
    assert starts == sorted(starts)
    assert starts[-1] <= span.end_time
    assert all(not e.attributes for e in span.events)
    attributes = dict(span.attributes or {})
    assert attributes["otel_injector.admission.uid"] == "u-1"
    assert attributes["k8s.pod.name"] == "web"
    assert attributes["otel_injector.decision"] == "injected"
    assert attributes["otel_injector.sidecar_mode"] == "native"


def test_skip_records_decode_and_decide_only(spans: InMemorySpanExporter) -> None:
    pod = {**POD, "metadata": {**POD["metadata"], "labels": {"tracing": "disabled"}}}
    _, span = handle_in_span(spans, orjson.dumps(review_for(pod)))
    assert [e.name for e in span.events] == ["decode review", "decide", "answer"]
    assert dict(span.attributes or {})["otel_injector.decision"] == "skipped"


def test_bad_review_records_the_decode_and_an_error(spans: InMemorySpanExporter) -> None:
    answer, span = handle_in_span(spans, b"{not json")
    assert isinstance(answer, BadReview)
    assert [e.name for e in span.events] == ["decode review", "answer"]
    assert span.status.status_code is StatusCode.ERROR


def test_internal_error_is_recorded_on_the_span(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(handler_module, "mutate", broken)
    answer, span = handle_in_span(spans, orjson.dumps(review_for(POD, uid="e-1")))
    assert isinstance(answer, bytes)
    assert orjson.loads(answer)["response"]["allowed"] is True
    assert span.status.status_code is StatusCode.ERROR
    assert "exception" in [e.name for e in span.events]
    assert dict(span.attributes or {})["otel_injector.decision"] == "error"


def test_no_recording_span_no_events() -> None:
    handler = AdmissionHandler(InjectionSettings, Metrics())
    answer = handler.handle(orjson.dumps(review_for(POD)))
    assert orjson.loads(answer)["response"]["allowed"] is True
