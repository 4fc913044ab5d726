"""The HTTP layer: routes, content-type and body-size checks, and nothing else.

``POST /mutate`` hands the raw body to :class:`~webhook.admission.handler.AdmissionHandler`; the
other routes are for probes and scraping. Every malformed request gets a 4xx with a
one-line ``{"error": ...}`` body, never a 5xx; 404 and 405 too.

The HTTP side of the cost budget (see :mod:`webhook.core.bounds`): bodies over
``max_body_bytes`` (6 MiB) get 413 as soon as they pass it; a client that hangs up mid-body
costs one debug line; and reviews over :data:`INLINE_BODY_BYTES`, which may take up to about
a second of CPU, are answered in a worker thread, one at a time, so the event loop keeps
answering probes and small reviews meanwhile (a typical review stays inline: a thread hop
would cost more than the review). Header limits and read deadlines are the protocol's
(:mod:`webhook.http.limits`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import orjson
from fastapi import FastAPI, Request, Response
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from webhook import __version__
from webhook.admission.handler import AdmissionHandler
from webhook.admission.review import BadReview
from webhook.config.live import LiveInjection
from webhook.config.settings import Settings, describe_settings
from webhook.core.bounds import clip
from webhook.core.settings import InjectionSettings
from webhook.http import limits
from webhook.http.instrumentation import instrument
from webhook.telemetry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from webhook.telemetry.metrics import Metrics
from webhook.telemetry.servingmetrics import ServingCollector
from webhook.telemetry.tracing import build_tracer_provider

log = logging.getLogger("webhook.http.app")
JSON = "application/json"
# Reviews up to this size are answered inline, in well under a millisecond to a few ms;
# larger ones, rare and up to about a second of CPU, in a worker thread.
INLINE_BODY_BYTES = 256 * 1024


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
) -> FastAPI:
    """Build the ASGI app.

    Tracing comes from ``tracer_provider`` or else from the ``OTEL_*`` environment
    (``span_processor`` lets tests capture spans in memory). Admissions use ``live``'s
    current settings (default: ``settings.injection``, fixed). ``app_metrics`` lets the
    composition root share the registry with the controllers (default: a new one).

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
    handler = AdmissionHandler(state.live.current, state.metrics)

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

    # One large review at a time per worker: each may take up to the budget's ~64 MiB.
    large_reviews = asyncio.Semaphore(1)

    async def mutate(request: Request) -> Response:
        try:
            _check_content_type(request.headers.get("content-type"))
            body = await _read_body(request, settings.max_body_bytes)
            if len(body) <= INLINE_BODY_BYTES:
                answer = handler.handle(body)
            else:
                # Up to a second of CPU for the largest bodies: in a thread, so the event
                # loop keeps answering probes and small reviews at every GIL switch.
                async with large_reviews:
                    answer = await asyncio.to_thread(handler.handle, body)
        except BadReview as err:
            if err.reason in ("content-type", "body-too-large"):  # the handler counts its own
                state.metrics.invalid_requests.labels(status=str(err.status)).inc()
                state.metrics.refused.labels(reason=err.reason).inc()
            return _error(err.status, str(err))
        except ClientDisconnect:
            # Cheap to provoke, so worth no more than a debug line.
            state.metrics.refused.labels(reason="client-disconnect").inc()
            log.debug("client hung up before its request body was complete")
            return Response(status_code=400)
        return Response(content=answer, media_type=JSON)

    # A plain Starlette route: it takes the raw body, so FastAPI's request handling
    # (dependency resolution, an exit stack per request) would only add ~40 us to each
    # admission.
    app.router.add_route("/mutate", mutate, methods=["POST"])

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


def _check_content_type(value: str | None) -> None:
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != JSON:
        shown = repr(clip(value)) if value else "missing"
        raise BadReview(f"Content-Type must be {JSON}, not {shown}", status=415, reason="content-type")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise BadReview(f"body of {clip(declared, 20)} bytes is over the {limit}-byte limit", status=413,
                        reason="body-too-large")  # fmt: skip
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadReview(f"body is over the {limit}-byte limit", status=413, reason="body-too-large")
    return bytes(body)


def _error(status: int, message: str) -> Response:
    return Response(content=orjson.dumps({"error": message}), status_code=status, media_type=JSON)
