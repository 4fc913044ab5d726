"""The webhook's own tracing, configured by the standard OTEL_* variables."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from webhook import __version__
from webhook.telemetry import tracing as telemetry
from webhook.telemetry.tracing import build_tracer_provider, tracing_disabled


class RecordingBatch(SpanProcessor):
    """Stands in for BatchSpanProcessor: keeps the exporter, starts no thread."""

    made: list[SpanExporter]

    def __init__(self, exporter: SpanExporter) -> None:
        RecordingBatch.made.append(exporter)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> list[SpanExporter]:
    # The SDK's resource detector reads os.environ itself; keep the host's variables out.
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    RecordingBatch.made = []
    monkeypatch.setattr(telemetry, "BatchSpanProcessor", RecordingBatch)
    return RecordingBatch.made


def built(environ: dict[str, str]) -> TracerProvider:
    provider = build_tracer_provider(environ)
    assert provider is not None
    return provider


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_sdk_disabled(value: str) -> None:
    assert tracing_disabled({"OTEL_SDK_DISABLED": value})
    assert build_tracer_provider({"OTEL_SDK_DISABLED": value}) is None


@pytest.mark.parametrize("value", ["false", "1", "yes", ""])
def test_sdk_not_disabled(value: str) -> None:
    assert not tracing_disabled({"OTEL_SDK_DISABLED": value})
    assert build_tracer_provider({"OTEL_SDK_DISABLED": value, "OTEL_TRACES_EXPORTER": "none"}) is not None


def test_default_service_name_and_version() -> None:
    attributes = built({"OTEL_TRACES_EXPORTER": "none"}).resource.attributes
    assert attributes["service.name"] == "otel-injector"
    assert attributes["service.version"] == __version__


def test_service_name_from_given_environment() -> None:
    provider = built({"OTEL_SERVICE_NAME": "injector-canary", "OTEL_TRACES_EXPORTER": "none"})
    assert provider.resource.attributes["service.name"] == "injector-canary"


def test_service_name_from_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-process")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    provider = build_tracer_provider()
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "from-process"


def test_exporter_none_adds_no_processor(isolated: list[SpanExporter]) -> None:
    built({"OTEL_TRACES_EXPORTER": "none"})
    built({"OTEL_TRACES_EXPORTER": " NONE "})
    assert isolated == []


def test_default_protocol_is_http(isolated: list[SpanExporter]) -> None:
    built({})
    assert len(isolated) == 1
    assert type(isolated[0]) is HttpExporter


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, HttpExporter),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, GrpcExporter),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, HttpExporter),
    ],
)
def test_protocol_selection(environ: dict[str, str], expected: type[Any], isolated: list[SpanExporter]) -> None:
    built(environ)
    assert [type(e) for e in isolated] == [expected]


def test_unsupported_protocol_warns_and_uses_http(
    isolated: list[SpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhook.telemetry.tracing"):
        built({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert [type(e) for e in isolated] == [HttpExporter]
    assert [r.getMessage() for r in caplog.records] == ["unsupported OTLP protocol 'http/json'; using http/protobuf"]


def test_given_processor_replaces_export(isolated: list[SpanExporter]) -> None:
    spans = InMemorySpanExporter()
    provider = build_tracer_provider({}, processor=SimpleSpanProcessor(spans))
    assert provider is not None
    assert isolated == []
    with provider.get_tracer("webhook", __version__).start_as_current_span("POST /mutate"):
        pass
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["POST /mutate"]
    assert finished[0].resource.attributes["service.version"] == __version__


def test_processor_is_ignored_when_disabled() -> None:
    spans = InMemorySpanExporter()
    assert build_tracer_provider({"OTEL_SDK_DISABLED": "true"}, processor=SimpleSpanProcessor(spans)) is None
