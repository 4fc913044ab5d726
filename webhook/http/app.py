"""The HTTP layer: routes, content-type and body-size checks, and nothing else.

``POST /mutate`` (:mod:`webhook.http.admitroute`) hands the raw body to
:class:`~webhook.admission.handler.AdmissionHandler`; the other routes are for probes and
scraping. Every malformed request gets a 4xx with a one-line ``{"error": ...}`` body, never
a 5xx; 404 and 405 too.

The HTTP side of the cost budget (see :mod:`webhook.core.bounds`): bodies over
``max_body_bytes`` (6 MiB) get 413 as soon as they pass it; a client that hangs up mid-body
costs one debug line; and the largest reviews are answered in a worker thread, one at a
time (:mod:`webhook.http.admitroute`). Header limits and read deadlines are the protocol's
(:mod:`webhook.http.limits`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from webhook import __version__
from webhook.admission.handler import AdmissionHandler
from webhook.config.live import LiveInjection
from webhook.config.settings import Settings, describe_settings
from webhook.core.context import NO_CONTEXT, ClusterContext, ContextProvider
from webhook.core.settings import InjectionSettings
from webhook.http import limits
from webhook.http.admitroute import AdmissionRoute, error_body
from webhook.http.instrumentation import instrument
from webhook.telemetry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.telemetry.metrics import Metrics
from webhook.telemetry.servingmetrics import ServingCollector
from webhook.telemetry.tracing import build_tracer_provider

log = logging.getLogger("webhook.http.app")
JSON = "application/json"
#: Net new container objects before a young collection (``gc.set_threshold``), see lifespan.
GC_YOUNG_THRESHOLD = 20_000


class BackgroundService(Protocol):
    """Something that runs beside the server for the app's lifetime (the in-cluster
    controllers). ``start`` returns once it is running (bounded); ``stop`` is bounded and
    idempotent. Both block, so the app calls them in a worker thread."""

    def start(self) -> None:
        """Start; return once running."""

    def stop(self) -> None:
        """Stop and release what is held (the Lease)."""


class AppState:
    """What the routes share: readiness, the current injection settings, metrics."""

    def __init__(self, settings: Settings, live: LiveInjection, metrics: Metrics) -> None:
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.ready = False
        #: Gives each injected pod its cluster context (the informer caches); None: no cluster view.
        self.context_provider: ContextProvider | None = None

    def context_for(self, pod: Mapping[str, Any], namespace: str) -> ClusterContext:
        """The cluster context of a pod about to be injected (no I/O)."""
        provider = self.context_provider
        return provider(pod, namespace) if provider is not None else NO_CONTEXT

    @property
    def injection(self) -> InjectionSettings:
        """The injection settings in force now (the reconciler may change the config hash)."""
        return self.live.current()


def create_app(
    settings: Settings,
    *,
    tracer_provider: TracerProvider | None = None,
    span_processor: SpanProcessor | None = None,
    live: LiveInjection | None = None,
    services: Sequence[BackgroundService] = (),
    app_metrics: Metrics | None = None,
    context: ContextProvider | None = None,
) -> FastAPI:
    """Build the ASGI app.

    Tracing comes from ``tracer_provider`` or else from the ``OTEL_*`` environment
    (``span_processor`` lets tests capture spans in memory). Admissions use ``live``'s
    current settings (default: ``settings.injection``, fixed). ``app_metrics`` lets the
    composition root share the registry with the controllers (default: a new one).
    ``context`` gives each injected pod its cluster context (default: none).

    Lifespan: start every service, then report ready; on shutdown, once uvicorn has
    stopped serving, report not ready, stop every service (the controllers release their
    Lease here: uvicorn re-raises SIGTERM after shutdown, so ``atexit`` would never run),
    and flush the spans."""
    provider = tracer_provider or build_tracer_provider(
        processor=span_processor, switch_interval=settings.serving.gil_switch_interval_seconds
    )
    limits.configure(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
    )
    state = AppState(settings, live or LiveInjection(settings.injection), app_metrics or Metrics())
    state.metrics.add_counts(
        "otel_injector_http_refused",
        "Requests the HTTP protocol refused before the app saw them, by reason "
        "(header-too-large, too-many-headers, header-timeout, body-timeout, idle-timeout, bad-http).",
        "reason",
        lambda: dict(limits.REFUSALS),
    )
    # The certificate's expiry and readiness, for the chart's alerts (read at each scrape).
    state.metrics.registry.register(ServingCollector(settings.tls_cert, lambda: state.ready))
    state.context_provider = context
    handler = AdmissionHandler(state.live.current, state.metrics, context=state.context_for)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for service in services:
            await asyncio.to_thread(service.start)
        # What exists now (modules, the app, settings) lives as long as the process. Out of
        # the collector's sight, a full collection, which the garbage of busy requests and
        # queued spans sets off every few seconds, walks only what requests made: under a
        # millisecond instead of 15-100 ms of a stalled event loop.
        gc.collect()
        gc.freeze()
        # Nearly all of an admission's objects die by reference count, so young collections
        # find little; at the default threshold (700) a large review (50 containers, 2,000
        # env vars: ~10,000 dicts and lists alive at once) set off 11 of them, about 10% of
        # its CPU (1.07 ms of ~10 ms, gc.callbacks timing). At GC_YOUNG_THRESHOLD none run
        # during such a review, and cyclic garbage still goes within that many objects.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        state.ready = True
        log.info("otel-injector %s ready", __version__, extra={"settings": describe_settings(settings)})
        try:
            yield
        finally:
            state.ready = False
            for service in reversed(services):
                await asyncio.to_thread(service.stop)
            if provider is not None:
                provider.shutdown()

    app = FastAPI(
        title="otel-injector",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.injector = state

    # A plain ASGI endpoint (webhook.http.admitroute says why), inside the instrumentation.
    admission = AdmissionRoute(handler, state.metrics, settings.max_body_bytes)
    app.router.routes.append(Route("/mutate", admission, methods=["POST"]))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> Response:
        # 404 and 405 answer like every other error: {"error": ...}, not FastAPI's {"detail": ...}.
        response = _error(err.status_code, str(err.detail))
        response.headers.update(err.headers or {})
        return response

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(content=b"ok\n", media_type="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        if state.ready:
            return Response(content=b"ok\n", media_type="text/plain")
        return Response(content=b"not ready\n", status_code=503, media_type="text/plain")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(content=state.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    instrument(app, provider)
    return app


def _error(status: int, message: str) -> Response:
    return Response(content=error_body(message), status_code=status, media_type=JSON)
