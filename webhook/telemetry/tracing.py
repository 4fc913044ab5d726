"""The webhook's own tracing, configured by the standard ``OTEL_*`` environment variables.

* ``OTEL_SDK_DISABLED=true`` switches it off (no provider is installed, spans are no-ops).
* ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` picks ``grpc`` or ``http/protobuf`` (default);
  the endpoint variables are read by the exporters themselves.
* ``OTEL_TRACES_EXPORTER=none`` keeps spans (for trace ids in logs) but exports nothing.

Export runs in the batch processor's thread with a bounded queue: when the backend is slow
or absent, spans are dropped, and admission never waits for it.

Export runs in a thread of the same interpreter, so it competes with the event loop for
the GIL. Encoding a batch of spans to OTLP is pure-Python work, about 30 us a span: with the
SDK's defaults (512 spans a batch, a 5 ms GIL switch interval) a request that arrives during
an export waited up to 5 ms at a time for the GIL, and p99 latency at 200 admissions/s was
several times what it is without export. So, unless the ``OTEL_BSP_*`` variables say
otherwise, :mod:`webhook.http.server` exports in batches of :data:`EXPORT_BATCH_SIZE` spans, and
while an export thread runs the switch interval is at most ``switch_interval`` (the
``gil_switch_interval_seconds`` setting, default :data:`SWITCH_INTERVAL_SECONDS`).

The server span of each request comes from ``opentelemetry-instrumentation-fastapi``, set up
in :mod:`webhook.http.instrumentation` with the provider built here.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from urllib.parse import unquote

from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from webhook import __version__

log = logging.getLogger("webhook.telemetry.tracing")
DEFAULT_SERVICE_NAME = "otel-injector"
#: Spans per OTLP export request, unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE is set.
EXPORT_BATCH_SIZE = 64
#: The longest the export thread keeps the GIL while the event loop waits for it.
SWITCH_INTERVAL_SECONDS = 0.0005


def tracing_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_SDK_DISABLED`` asks for no tracing."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def build_tracer_provider(
    environ: Mapping[str, str] | None = None,
    processor: SpanProcessor | None = None,
    *,
    switch_interval: float = SWITCH_INTERVAL_SECONDS,
) -> TracerProvider | None:
    """A tracer provider per the environment, or ``None`` when tracing is disabled.

    ``processor`` replaces the OTLP batch export (tests pass an in-memory one). With the
    export thread, the interpreter's GIL switch interval is lowered to ``switch_interval``."""
    env = os.environ if environ is None else environ
    if tracing_disabled(env):
        return None
    # Set explicitly: the SDK's own detector reads os.environ, not ``env``.
    attributes = {SERVICE_VERSION: __version__, SERVICE_NAME: _service_name(env)}
    provider = TracerProvider(resource=_HashedOnce.of(Resource.create(attributes)))
    if processor is not None:
        provider.add_span_processor(processor)
        return provider
    exporter = _exporter(env)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        sys.setswitchinterval(min(sys.getswitchinterval(), switch_interval))
    return provider


class _HashedOnce(Resource):
    """A Resource whose hash is computed once. The OTLP encoder groups every span of a
    batch by its resource, and the SDK's ``Resource.__hash__`` serializes all the
    attributes to JSON each time: 15 % of the export thread's time under load."""

    _hash: int

    @classmethod
    def of(cls, resource: Resource) -> _HashedOnce:
        """The same attributes and schema URL, hashed once."""
        hashed = cls(resource.attributes, resource.schema_url)
        hashed._hash = Resource.__hash__(hashed)
        return hashed

    def __hash__(self) -> int:
        return self._hash


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
