"""The webhook's own tracing, configured by the standard ``OTEL_*`` environment variables.

* ``OTEL_SDK_DISABLED=true`` switches it off (no provider is installed, spans are no-ops).
* ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` picks ``grpc`` or ``http/protobuf`` (default);
  the endpoint variables are read by the exporters themselves.
* ``OTEL_TRACES_EXPORTER=none`` keeps spans (for trace ids in logs) but exports nothing.

Export runs in the batch processor's thread with a bounded queue: when the backend is slow
or absent, spans are dropped, and admission never waits for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from urllib.parse import unquote

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from webhook import __version__

log = logging.getLogger("webhook.telemetry")
DEFAULT_SERVICE_NAME = "otel-injector"
# Probes and scrapes would otherwise be most of the spans and show nothing.
EXCLUDED_URLS = "healthz,readyz,metrics"


def tracing_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_SDK_DISABLED`` asks for no tracing."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def build_tracer_provider(
    environ: Mapping[str, str] | None = None,
    processor: SpanProcessor | None = None,
) -> TracerProvider | None:
    """A tracer provider per the environment, or ``None`` when tracing is disabled.

    ``processor`` replaces the OTLP batch export (tests pass an in-memory one)."""
    env = os.environ if environ is None else environ
    if tracing_disabled(env):
        return None
    # Set explicitly: the SDK's own detector reads os.environ, not ``env``.
    attributes = {SERVICE_VERSION: __version__, SERVICE_NAME: _service_name(env)}
    provider = TracerProvider(resource=Resource.create(attributes))
    if processor is not None:
        provider.add_span_processor(processor)
        return provider
    exporter = _exporter(env)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _service_name(env: Mapping[str, str]) -> str:
    """Per the OTel spec: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES,
    else our default (instead of the SDK's unknown_service)."""
    if env.get("OTEL_SERVICE_NAME"):
        return env["OTEL_SERVICE_NAME"]
    for pair in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = pair.partition("=")
        if key.strip() == SERVICE_NAME and value.strip():
            return unquote(value.strip())
    return DEFAULT_SERVICE_NAME


def _exporter(env: Mapping[str, str]) -> SpanExporter | None:
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol != "http/protobuf":
        log.warning("unsupported OTLP protocol %r; using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def instrument(app: FastAPI, provider: TracerProvider | None) -> None:
    """Continue the caller's W3C trace in a server span per request; the per-message
    ASGI receive/send spans are left out, they cost far more than they show."""
    if provider is None:
        return
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )


def tracer_for(provider: TracerProvider | None) -> trace.Tracer:
    """The handler's tracer: from ``provider``, or a no-op one when tracing is off."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer("webhook", __version__)
