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

The server span comes from :class:`ServerSpanMiddleware`, a lean ASGI middleware, not from
``opentelemetry-instrumentation-fastapi``: that instrumentation cost about a quarter of the
CPU of an admission (header and URL parsing for a dozen attributes, duration metrics, an
exception-handling layer) for one span. This one continues the caller's W3C context with
the global propagator and records a SERVER span named ``POST /mutate`` with the stable
HTTP semantic-convention attributes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from urllib.parse import unquote

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webhook import __version__

log = logging.getLogger("webhook.telemetry.tracing")
DEFAULT_SERVICE_NAME = "otel-injector"
#: Spans per OTLP export request, unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE is set.
EXPORT_BATCH_SIZE = 64
#: The longest the export thread keeps the GIL while the event loop waits for it.
SWITCH_INTERVAL_SECONDS = 0.0005
# Probes and scrapes would otherwise be most of the spans and show nothing.
EXCLUDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


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


def instrument(app: FastAPI, provider: TracerProvider | None) -> None:
    """Continue the caller's W3C trace in a server span per request (none for probes and
    scrapes). Call it after the routes are defined: their paths name the spans."""
    if provider is None:
        return
    routes = frozenset(str(path) for path in (getattr(route, "path", None) for route in app.routes) if path)
    app.add_middleware(
        ServerSpanMiddleware,
        tracer=provider.get_tracer("webhook.http", __version__),
        routes=routes,
    )


class ServerSpanMiddleware:
    """One SERVER span around each HTTP request, current while the app runs."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, routes: frozenset[str]) -> None:
        self.app = app
        self.tracer = tracer
        self.routes = routes
        self.fields = frozenset(propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Trace ``scope`` unless it is not HTTP or is a probe or scrape."""
        path = scope.get("path", "")
        if scope["type"] != "http" or path in EXCLUDED_PATHS:
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] = {}
        user_agent = None
        for raw_name, raw_value in scope.get("headers") or ():
            name = raw_name.decode("latin-1")
            if name in self.fields:
                carrier[name] = raw_value.decode("latin-1")
            elif name == "user-agent":
                user_agent = raw_value.decode("latin-1")
        method = scope.get("method", "GET")
        route = path if path in self.routes else None
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "https"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if route:
            attributes["http.route"] = route
        server, client = scope.get("server"), scope.get("client")
        if server:
            attributes["server.address"], attributes["server.port"] = server[0], server[1]
        if client:
            attributes["client.address"] = client[0]
        if user_agent:
            attributes["user_agent.original"] = user_agent
        with self.tracer.start_as_current_span(
            f"{method} {route}" if route else method,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def send_and_record(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_and_record)


def tracer_for(provider: TracerProvider | None) -> trace.Tracer:
    """The handler's tracer: from ``provider``, or a no-op one when tracing is off."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer("webhook", __version__)
